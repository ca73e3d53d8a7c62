/** Pinned tool definitions as the store holds them (store/pins.ts). Times are µs since the epoch. */

/**
 * A connection's pinned tool: the definition an admin trusts (first seen, or approved since) and, when the server
 * now offers another one (or a tool never approved), that definition, pending approval. A tool with a pending
 * definition is quarantined: hidden from tools/list, its calls refused.
 */
export interface ToolPinRow {
  connection: string;
  tool: string;
  /** SHA-256 (hex) of the approved definition; null for a tool that appeared later and was never approved. */
  digest: string | null;
  /** The approved definition as canonical JSON (name, description, inputSchema, annotations). */
  definition: string | null;
  /** A changed or new definition the server offers, awaiting approval. */
  pendingDigest: string | null;
  pendingDefinition: string | null;
  pendingSinceUs: number | null;
  /** When the server's list last lacked the tool; null while it offers it. */
  removedAtUs: number | null;
  pinnedAtUs: number;
  approvedAtUs: number | null;
  approvedBy: string | null;
  /**
   * Why the approved definition deserves a second look: what the poisoning scan found in it, or the name another
   * connection offered first. Kept after an admin approved it anyway; empty for most pins.
   */
  reasons: ToolPinReason[];
  /** Why the pending definition is held besides being new or changed (the scan's findings); empty when none. */
  pendingReasons: ToolPinReason[];
  /**
   * Since when the server lists the tool's name more than once in one list (which definition would a client use?);
   * null while it lists it once. Such a tool is held whatever its definitions, until a list shows the name once.
   */
  duplicatedSinceUs: number | null;
}

/** One reason a tool definition is suspicious: the rule, where in the definition, and what it found. */
export interface ToolPinReason {
  /** The scan rule (`bidi-control`, `hide-from-user`, …) or `duplicate-name`. */
  rule: string;
  /** Where: `description`, `inputSchema.properties.path.description`, `name`, … */
  field: string;
  /** What, with the text around it quoted, invisible characters shown as code points. */
  message: string;
  /** Other connections involved (a tool it names, the one that offered the name first). */
  connections?: string[];
}

/** What a tool pin update writes (whether its name is listed twice is written apart: `markToolPinsDuplicated`). */
export type ToolPinUpdate = Partial<Omit<ToolPinRow, 'connection' | 'tool' | 'pinnedAtUs' | 'duplicatedSinceUs'>>;

/** What an update of a tool pin expects it to be as the caller last read it. */
export interface ToolPinExpected {
  digest: string | null;
  pendingDigest: string | null;
  /** Also that its server does not list its name twice (an approval: what would it approve?). */
  listedOnce?: true;
}
