import { inGroups } from '../identity/roles.js';
import type { Logger } from 'pino';
import type { Identity } from '../core/identity.js';
import { nowUs } from '../recording/time.js';
import type { Store } from '../store/store.js';
import type { ToolPinRow } from '../store/pin-types.js';
import { HttpError } from '../core/http-error.js';
import { comparePin, type PinChange, pinFirstSight, pinnedDefinition } from './definitions.js';
import { type DuplicateNames, type ScanMode, Screener } from './screen.js';

/**
 * Tool pinning, the rug-pull defence: the first time a connection's tool list is seen, every definition is pinned
 * (SHA-256 of its canonical name, description, input schema and annotations). Later, a definition that changed, or
 * a tool that appeared, is quarantined (hidden from tools/list, its calls refused) until an admin approves the new
 * definition; a tool that disappeared is noted. Pins live in the store, shared by every gateway. A definition
 * not trusted before (first sight, a change, a new tool) is screened first (./screen.ts): one that looks poisoned,
 * or whose name another connection offered first, is quarantined even at first sight, with the reasons kept. What
 * a listed definition writes to its stored pin is ./definitions.ts; this is what the gateway makes of the pins. A name
 * the server lists twice is held too, whichever definition is pinned, until a list shows it once: the store says
 * so (`duplicatedSinceUs`), so every replica holds it, and a restarted one.
 */

export class PinError extends HttpError {}

/** Whether a pin holds its tool: a definition waits for an admin, or the server lists the name twice. */
export const held = (p: ToolPinRow): boolean => p.pendingDigest !== null || p.duplicatedSinceUs !== null;

/** An approval of a name the server lists twice: which of its definitions would it approve? */
const listedTwice = (connection: string, tool: string) =>
  new PinError(
    409,
    `the server of '${connection.slice(0, 100)}' lists tool ${JSON.stringify(tool.slice(0, 200))} twice: it stays held until the server lists it once, and no approval can release it before`,
  );

/** What a tool list looks like after pinning: the tools to show, what changed, and which are quarantined. */
export interface PinCheck {
  visible: unknown[];
  changes: PinChange[];
  quarantined: string[];
}

const annotationsOf = (tool: Record<string, unknown>): Record<string, unknown> => {
  const a = tool.annotations;
  return a !== null && typeof a === 'object' && !Array.isArray(a) ? (a as Record<string, unknown>) : {};
};

const named = (t: unknown): t is Record<string, unknown> & { name: string } =>
  t !== null && typeof t === 'object' && typeof (t as { name?: unknown }).name === 'string';

export interface ToolPinsOptions {
  store: Store;
  log: Logger;
  /** Groups whose members may approve new definitions (roles.admins). */
  admins: readonly string[];
  /** pins.scan; default quarantine. */
  scan?: ScanMode;
  /** pins.duplicateNames; default flag. */
  duplicateNames?: DuplicateNames;
  /**
   * The connection's pins in the store changed here: a definition approved, or held, released or pinned by a list
   * checked here, a name it lists twice or once again. Other replicas are told, so that they read them again: a tool
   * quarantined here is refused there too (a client whose calls land on another replica than its lists), one
   * approved here is let through there.
   */
  onStored?: (connection: string) => void;
}

export class ToolPins {
  /** Connection → its quarantined tools, as this gateway last saw them: read on every tools/call. */
  readonly #quarantined = new Map<string, Set<string>>();
  /** Connection → how often its quarantined tools changed here: a list kept from before (a virtual server's) is stale. */
  readonly #versions = new Map<string, number>();
  /** Connection → the tools it offers, for reporting one name offered by two connections. */
  readonly #offered = new Map<string, Set<string>>();
  /** Connection → how often this gateway changed its quarantine itself: a store read begun before that is stale. */
  readonly #localChanges = new Map<string, number>();

  readonly scan: ScanMode;
  readonly duplicateNames: DuplicateNames;

  constructor(private readonly o: ToolPinsOptions) {
    this.scan = o.scan ?? 'quarantine';
    this.duplicateNames = o.duplicateNames ?? 'flag';
  }

  /**
   * Whether a tool is quarantined. Undefined until this gateway has read the connection's pins (it has not seen a
   * list yet): then `load` first, so a call is never let through for lack of knowing.
   */
  isQuarantined(connection: string, tool: string): boolean | undefined {
    return this.#quarantined.get(connection)?.has(tool);
  }

  /**
   * The version of a connection's quarantine, as this gateway knows it: it changes whenever a tool of the connection
   * enters or leaves quarantine (seen in a list here, read from the store, approved), so that a tools/list answered
   * before is known to be stale.
   */
  version(connection: string): number {
    return this.#versions.get(connection) ?? 0;
  }

  #changedHere(connection: string): void {
    this.#localChanges.set(connection, (this.#localChanges.get(connection) ?? 0) + 1);
  }

  #setQuarantined(connection: string, tools: Set<string>): void {
    const before = this.#quarantined.get(connection);
    this.#quarantined.set(connection, tools);
    // Unknown before: no list of the connection has passed the pins here yet, so none kept can be stale.
    if (before === undefined || (before.size === tools.size && [...tools].every((t) => before.has(t)))) return;
    this.#versions.set(connection, this.version(connection) + 1);
  }

  /** Reads a connection's quarantined tools from the store (pins another gateway saw). */
  async load(connection: string): Promise<void> {
    let pins: ToolPinRow[];
    for (let attempt = 1; ; attempt++) {
      const changesBefore = this.#localChanges.get(connection) ?? 0;
      pins = await this.o.store.listToolPins(connection);
      // A list checked or a tool approved here meanwhile knows better than a read begun before it: read again.
      if ((this.#localChanges.get(connection) ?? 0) === changesBefore) break;
      if (attempt === 3) {
        // Checked lists keep the listed tools current themselves; the others wait for the next read. A connection
        // never read here takes this one (unknown must not stay unknown: calls wait on it).
        if (this.#quarantined.has(connection)) return;
        break;
      }
    }
    const quarantined = new Set(pins.filter(held).map((p) => p.tool));
    this.#setQuarantined(connection, quarantined);
    const annotations = new Map<string, Record<string, unknown>>();
    const schemas = new Map<string, unknown>();
    for (const p of pins) {
      if (p.definition === null) continue;
      const definition = JSON.parse(p.definition) as Record<string, unknown>;
      annotations.set(p.tool, annotationsOf(definition));
      schemas.set(p.tool, definition.inputSchema);
    }
    this.#annotations.set(connection, annotations);
    this.#inputSchemas.set(connection, schemas);
  }

  /** Reads a connection's pins again if this gateway has read them before: another replica changed them. */
  async reload(connection: string): Promise<void> {
    if (this.#quarantined.has(connection)) await this.load(connection);
  }

  /** Reads again every connection this gateway knows (a change notification may have been missed). */
  async reloadAll(): Promise<void> {
    for (const connection of [...this.#quarantined.keys()]) await this.load(connection);
  }

  /** Connection → tool → the inputSchema of its approved definition: what `Mcp-Param-*` headers are checked against. */
  readonly #inputSchemas = new Map<string, Map<string, unknown>>();

  /** The approved inputSchema of a tool (its `x-mcp-header` declarations); undefined until `load`, null for a tool with none approved. */
  inputSchema(connection: string, tool: string): unknown {
    const known = this.#inputSchemas.get(connection);
    return known === undefined ? undefined : (known.get(tool) ?? null);
  }

  /** Connection → tool → the annotations of its approved definition: what guardrail conditions see. */
  readonly #annotations = new Map<string, Map<string, Record<string, unknown>>>();

  /**
   * The annotations of a tool's approved definition (not whatever a server said last); undefined until this
   * gateway has read the connection's pins (`load`), and `{}` for a tool it has no approved definition of.
   */
  annotations(connection: string, tool: string): Record<string, unknown> | undefined {
    const known = this.#annotations.get(connection);
    return known === undefined ? undefined : (known.get(tool) ?? {});
  }

  /** Whether any tool of the connection is pinned, as this gateway last read. */
  hasPins(connection: string): boolean {
    return (this.#annotations.get(connection)?.size ?? 0) > 0 || (this.#quarantined.get(connection)?.size ?? 0) > 0;
  }

  /** Tool names already reported as offered by several connections, so the log says it once. */
  readonly #reported = new Set<string>();

  /** Logs, once per name and set of connections, that a tool name is offered by more than one connection. */
  reportShadowed(connection: string, tool: string, others: readonly string[]): void {
    if (this.duplicateNames === 'allow') return;
    const key = JSON.stringify([tool, ...[connection, ...others].sort()]);
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    this.o.log.warn({ tool, connections: [connection, ...others] }, 'a tool name is offered by more than one connection');
  }

  /** The other connections that offer a tool of this name. */
  alsoOfferedBy(connection: string, tool: string): string[] {
    const others: string[] = [];
    for (const [c, tools] of this.#offered) if (c !== connection && tools.has(tool)) others.push(c);
    return others;
  }

  /**
   * Checks a server's tool list against the connection's pins, pinning on first sight. `complete` says the list is
   * the whole of it (not one page), so that tools missing from it count as removed.
   */
  async check(connection: string, tools: readonly unknown[], complete: boolean): Promise<PinCheck> {
    let pins = new Map((await this.o.store.listToolPins(connection)).map((p) => [p.tool, p]));
    const changes: PinChange[] = [];
    const offered = tools.filter(named);
    const screener = new Screener(this.o.store, connection, new Set(offered.map((t) => t.name)), this);
    if (pins.size === 0 && offered.length > 0) {
      changes.push(...(await pinFirstSight(this.o.store, connection, offered, screener)));
      pins = new Map((await this.o.store.listToolPins(connection)).map((p) => [p.tool, p]));
    }
    const visible: unknown[] = [];
    // What this list changes, applied at the end to the quarantine as it is then (a read from the store may have
    // changed it meanwhile, for tools this list does not show).
    const quarantined = new Set<string>();
    const released = new Set<string>();
    const seen = new Set<string>();
    const duplicated = new Set<string>();
    // A name listed twice is ambiguous (which definition would the client use?): both are quarantined.
    const counts = new Map<string, number>();
    for (const t of offered) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
    for (const t of tools) {
      if (!named(t)) {
        visible.push(t);
        continue;
      }
      if ((counts.get(t.name) ?? 0) > 1) {
        if (!seen.has(t.name)) {
          changes.push({ tool: t.name, change: 'duplicated' });
          // A name never pinned is added as any new tool (held for an admin), so that there is a pin to hold it by.
          if (!pins.has(t.name)) await comparePin(this.o.store, screener, { connection, tool: t.name, ...pinnedDefinition(t) }, undefined, changes);
        }
        seen.add(t.name);
        duplicated.add(t.name);
        quarantined.add(t.name);
        continue;
      }
      seen.add(t.name);
      const { definition, digest } = pinnedDefinition(t);
      const pin = pins.get(t.name);
      const trusted = await comparePin(this.o.store, screener, { connection, tool: t.name, definition, digest }, pin, changes);
      if (trusted) {
        visible.push(t);
        released.add(t.name);
        (this.#annotations.get(connection) ?? this.#annotations.set(connection, new Map()).get(connection)!).set(t.name, annotationsOf(t));
        (this.#inputSchemas.get(connection) ?? this.#inputSchemas.set(connection, new Map()).get(connection)!).set(t.name, t.inputSchema);
      } else {
        quarantined.add(t.name);
      }
    }
    if (complete) {
      for (const pin of pins.values()) {
        if (seen.has(pin.tool) || pin.removedAtUs !== null) continue;
        if (await this.o.store.updateToolPin(connection, pin.tool, pin, { removedAtUs: nowUs() })) changes.push({ tool: pin.tool, change: 'removed' });
      }
      this.#offered.set(connection, seen);
    } else {
      for (const name of seen) (this.#offered.get(connection) ?? this.#offered.set(connection, new Set()).get(connection)!).add(name);
    }
    const marks = await this.#markDuplicated(connection, pins, { duplicated, seen, complete });
    // A name the whole list no longer shows at all is no longer ambiguous: held only while a definition waits.
    for (const name of marks.cleared) if (!seen.has(name) && pins.get(name)?.pendingDigest === null) released.add(name);
    this.#changedHere(connection);
    const now = new Set(this.#quarantined.get(connection));
    for (const name of released) now.delete(name);
    for (const name of quarantined) now.add(name);
    this.#setQuarantined(connection, now);
    for (const c of changes) this.#logChange(connection, c);
    // Every change but a name listed twice is one this gateway wrote to the store; that one is written once, at first.
    if (changes.some((c) => c.change !== 'duplicated') || marks.marked.length > 0 || marks.cleared.length > 0) this.o.onStored?.(connection);
    return { visible, changes, quarantined: [...now] };
  }

  /**
   * Records in the store which names a list shows twice, and which it shows once again (those a complete list lacks
   * too): a page of a list says nothing of the names on other pages. What it changed, to be announced.
   */
  async #markDuplicated(
    connection: string,
    pins: ReadonlyMap<string, ToolPinRow>,
    list: { duplicated: ReadonlySet<string>; seen: ReadonlySet<string>; complete: boolean },
  ): Promise<{ marked: string[]; cleared: string[] }> {
    const marked = list.duplicated.size === 0 ? [] : await this.o.store.markToolPinsDuplicated(connection, [...list.duplicated], nowUs());
    // Of the pins as read before the list was checked: a name another replica marked since stays held, until the next list.
    const once = [...pins.values()]
      .filter((p) => p.duplicatedSinceUs !== null && !list.duplicated.has(p.tool) && (list.complete || list.seen.has(p.tool)))
      .map((p) => p.tool);
    const cleared = once.length === 0 ? [] : await this.o.store.markToolPinsDuplicated(connection, once, null);
    return { marked, cleared };
  }

  #logChange(connection: string, c: PinChange): void {
    const fields = { connection, tool: c.tool, change: c.change, ...(c.reasons ? { reasons: c.reasons } : {}) };
    if (c.change === 'removed') this.o.log.warn(fields, 'a pinned tool was removed by its server');
    else if (c.change === 'suspicious') this.o.log.warn(fields, 'a new tool definition looks poisoned: quarantined until an admin approves it');
    else if (c.change === 'pinned' && c.reasons) this.o.log.warn(fields, 'a new tool definition looks poisoned: pinned anyway (pins.scan: flag)');
    else if (c.change !== 'pinned' && c.change !== 'restored' && c.change !== 'reverted')
      this.o.log.warn(fields, 'a tool definition differs from its pin: quarantined until an admin approves it');
  }

  mayApprove(identity: Identity): boolean {
    return inGroups(identity, this.o.admins);
  }

  list(connection?: string): Promise<ToolPinRow[]> {
    return this.o.store.listToolPins(connection);
  }

  async get(connection: string, tool: string): Promise<ToolPinRow> {
    const pin = (await this.o.store.listToolPins(connection)).find((p) => p.tool === tool);
    if (pin === undefined) throw new PinError(404, `connection '${connection.slice(0, 100)}' has no pinned tool named ${JSON.stringify(tool.slice(0, 200))}`);
    return pin;
  }

  /**
   * Approves the pending definition of a tool: it becomes the pinned one and the tool leaves quarantine. `digest`,
   * when given, must be the pending definition's (what the admin looked at), so a definition that changed again
   * meanwhile is not approved unseen.
   */
  async approve(connection: string, tool: string, identity: Identity, digest: string | undefined): Promise<ToolPinRow> {
    if (!this.mayApprove(identity))
      throw new PinError(403, `only members of ${this.o.admins.join(', ') || 'roles.admins (none configured)'} may approve tool definitions`);
    const pin = await this.get(connection, tool);
    if (pin.duplicatedSinceUs !== null) throw listedTwice(connection, tool);
    if (pin.pendingDigest === null || pin.pendingDefinition === null)
      throw new PinError(409, `tool '${tool}' on '${connection}' has no new definition waiting for approval`);
    if (digest !== undefined && digest !== pin.pendingDigest)
      throw new PinError(409, `the waiting definition is ${pin.pendingDigest.slice(0, 12)}…, not ${digest.slice(0, 12)}…: look at it again before approving`);
    // The reasons go with the definition: an approved suspicious one still shows why it was held.
    const update = {
      digest: pin.pendingDigest,
      definition: pin.pendingDefinition,
      pendingDigest: null,
      pendingDefinition: null,
      pendingSinceUs: null,
      approvedAtUs: nowUs(),
      approvedBy: identity.email ?? identity.subject,
      reasons: pin.pendingReasons,
      pendingReasons: [],
    };
    const expected = { digest: pin.digest, pendingDigest: pin.pendingDigest, listedOnce: true } as const;
    if (!(await this.o.store.updateToolPin(connection, tool, expected, update))) {
      if ((await this.get(connection, tool)).duplicatedSinceUs !== null) throw listedTwice(connection, tool);
      throw new PinError(409, `tool '${tool}' changed while you approved it; look at it again`);
    }
    // Unknown here until read (load): an empty set would let the connection's other quarantined tools through.
    const known = this.#quarantined.get(connection);
    this.#changedHere(connection);
    if (known?.has(tool)) this.#setQuarantined(connection, new Set([...known].filter((t) => t !== tool)));
    this.#annotations.get(connection)?.set(tool, annotationsOf(JSON.parse(pin.pendingDefinition) as Record<string, unknown>));
    this.o.log.info({ connection, tool, digest: pin.pendingDigest, by: identity.subject }, 'tool definition approved');
    this.o.onStored?.(connection);
    return { ...pin, ...update };
  }
}
