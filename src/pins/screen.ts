import type { Store } from '../store/store.js';
import type { ToolPinReason, ToolPinRow } from '../store/pin-types.js';
import type { ScanContext } from './scan/rule.js';
import { scanDefinition } from './scan/scan.js';

/**
 * Screening a definition the gateway has not trusted before (first sight, a change, a new tool): the poisoning
 * scan, and whether another connection offered the same tool name first. What it finds becomes the pin's
 * reasons; whether it holds the definition back for an admin depends on the config.
 */

/** pins.scan: hold a suspicious definition for an admin, only note why it is suspicious, or do not scan. */
export type ScanMode = 'quarantine' | 'flag' | 'off';
/** pins.duplicateNames: say nothing, show it (pins list, console), or also hold the later connection's tool. */
export type DuplicateNames = 'allow' | 'flag' | 'quarantine';

export interface Screening {
  reasons: ToolPinReason[];
  /** Whether the reasons alone hold the definition back (a new or changed one is held anyway). */
  quarantine: boolean;
}

/** Tool name → the connections whose current pins offer it (tools removed from a server's list do not count). */
export function offeredBy(pins: readonly ToolPinRow[]): Map<string, string[]> {
  const by = new Map<string, string[]>();
  for (const p of pins) if (p.removedAtUs === null) (by.get(p.tool) ?? by.set(p.tool, []).get(p.tool)!).push(p.connection);
  return by;
}

/** Screens the definitions of one connection's tool list, reading the other connections' pins once, when first needed. */
export class Screener {
  #others: Promise<{ pins: ToolPinRow[]; context: ScanContext }> | undefined;

  constructor(
    private readonly store: Store,
    private readonly connection: string,
    /** The tools the connection offers in this list. */
    private readonly ownTools: ReadonlySet<string>,
    private readonly modes: { scan: ScanMode; duplicateNames: DuplicateNames },
  ) {}

  /** Screens one definition (canonical JSON) of a tool whose pin dates from `pinnedAtUs` (now, for a new one). */
  async screen(tool: string, definition: string, pinnedAtUs: number): Promise<Screening> {
    if (this.modes.scan === 'off' && this.modes.duplicateNames !== 'quarantine') return { reasons: [], quarantine: false };
    const others = await (this.#others ??= this.#readOthers());
    const scanned = this.modes.scan === 'off' ? [] : scanDefinition(JSON.parse(definition) as Record<string, unknown>, others.context);
    // The later of two connections offering a name is the one held; pins of the same moment go by connection name.
    const earlier = others.pins.filter(
      (p) => p.tool === tool && p.removedAtUs === null && (p.pinnedAtUs < pinnedAtUs || (p.pinnedAtUs === pinnedAtUs && p.connection < this.connection)),
    );
    const duplicate: ToolPinReason[] =
      this.modes.duplicateNames === 'quarantine' && earlier.length > 0
        ? [
            {
              rule: 'duplicate-name',
              field: 'name',
              message: `another connection offered a tool named ${JSON.stringify(tool.slice(0, 100))} first: a client using both could be steered to this one`,
              connections: earlier.map((p) => p.connection),
            },
          ]
        : [];
    return { reasons: [...scanned, ...duplicate], quarantine: (this.modes.scan === 'quarantine' && scanned.length > 0) || duplicate.length > 0 };
  }

  async #readOthers(): Promise<{ pins: ToolPinRow[]; context: ScanContext }> {
    const pins = (await this.store.listToolPins()).filter((p) => p.connection !== this.connection);
    return {
      pins,
      context: {
        connection: this.connection,
        ownTools: this.ownTools,
        otherTools: offeredBy(pins),
        otherConnections: [...new Set(pins.map((p) => p.connection))],
      },
    };
  }
}
