import { createHash } from 'node:crypto';
import { canonicalJson } from '../protocol/canonical-json.js';
import { nowUs } from '../recording/time.js';
import type { ToolPinReason, ToolPinRow } from '../store/pin-types.js';
import type { Store } from '../store/store.js';
import type { Screener } from './screen.js';

/**
 * A listed tool definition against its stored pin: the pinned form and its digest, pinning a first list on sight,
 * and storing a new or changed definition as pending (screened) until an admin approves it. What it writes is in the
 * store only; what this gateway quarantines follows from it in ./tool-pins.ts.
 */

/** What happened to a tool's pin; `reasons` names the rules a new or changed definition tripped. */
export type PinChange = {
  tool: string;
  change: 'pinned' | 'suspicious' | 'changed' | 'added' | 'removed' | 'restored' | 'reverted' | 'duplicated';
  digest?: string;
  reasons?: string[];
};

const withReasons = (change: PinChange, reasons: readonly ToolPinReason[]): PinChange =>
  reasons.length === 0 ? change : { ...change, reasons: reasons.map((r) => r.rule) };

/** The part of a tool definition that is pinned, as canonical JSON, and its digest. */
export function pinnedDefinition(tool: Record<string, unknown>): { definition: string; digest: string } {
  const definition = canonicalJson({
    name: tool.name,
    description: tool.description ?? null,
    inputSchema: tool.inputSchema ?? null,
    annotations: tool.annotations ?? null,
  });
  return { definition, digest: createHash('sha256').update(definition).digest('hex') };
}

/**
 * Trust on first use: every definition of a connection's first list is the approved one, unless screening holds it
 * back. The changes are those this gateway wrote (another pinning the same list meanwhile wins, and writes them).
 */
export async function pinFirstSight(
  store: Store,
  connection: string,
  offered: ReadonlyArray<Record<string, unknown> & { name: string }>,
  screener: Screener,
): Promise<PinChange[]> {
  const at = nowUs();
  const rows: Array<{ row: ToolPinRow; change: PinChange }> = [];
  for (const t of offered) {
    const { definition, digest } = pinnedDefinition(t);
    const { reasons, quarantine } = await screener.screen(t.name, definition, at);
    const base = { connection, tool: t.name, removedAtUs: null, pinnedAtUs: at, approvedBy: null, duplicatedSinceUs: null };
    const row: ToolPinRow = quarantine
      ? {
          ...base,
          digest: null,
          definition: null,
          pendingDigest: digest,
          pendingDefinition: definition,
          pendingSinceUs: at,
          approvedAtUs: null,
          reasons: [],
          pendingReasons: reasons,
        }
      : { ...base, digest, definition, pendingDigest: null, pendingDefinition: null, pendingSinceUs: null, approvedAtUs: at, reasons, pendingReasons: [] };
    rows.push({ row, change: withReasons({ tool: t.name, change: quarantine ? 'suspicious' : 'pinned', digest }, reasons) });
  }
  // All at once: another gateway pinning the same list meanwhile writes nothing, and a reader sees all or none.
  const written = await store.insertToolPins(rows.map((r) => r.row));
  return rows.filter(({ row }) => written.has(row.tool)).map(({ change }) => change);
}

/** A definition as a tool list shows it, in its pinned form (`pinnedDefinition`). */
export interface ListedDefinition {
  connection: string;
  tool: string;
  definition: string;
  digest: string;
}

/**
 * Whether a listed definition is the approved one (its pin, undefined for a tool never seen); records a new pending
 * definition, screened, when it is not. What it changed in the store goes to `changes`.
 */
export async function comparePin(
  store: Store,
  screener: Screener,
  listed: ListedDefinition,
  pin: ToolPinRow | undefined,
  changes: PinChange[],
): Promise<boolean> {
  const { connection, tool, definition, digest } = listed;
  if (pin === undefined) {
    const at = nowUs();
    const { reasons } = await screener.screen(tool, definition, at);
    const row: ToolPinRow = {
      connection,
      tool,
      digest: null,
      definition: null,
      pendingDigest: digest,
      pendingDefinition: definition,
      pendingSinceUs: at,
      removedAtUs: null,
      pinnedAtUs: at,
      approvedAtUs: null,
      approvedBy: null,
      reasons: [],
      pendingReasons: reasons,
      duplicatedSinceUs: null,
    };
    if (await store.insertToolPin(row)) changes.push(withReasons({ tool, change: 'added', digest }, reasons));
    return false;
  }
  if (pin.digest === digest) {
    if (pin.removedAtUs !== null && (await store.updateToolPin(connection, tool, pin, { removedAtUs: null })))
      changes.push({ tool, change: 'restored', digest });
    // Back to the approved definition: the change that waited is void (else other gateways keep it quarantined).
    if (
      pin.pendingDigest !== null &&
      (await store.updateToolPin(connection, tool, pin, { pendingDigest: null, pendingDefinition: null, pendingSinceUs: null, pendingReasons: [] }))
    )
      changes.push({ tool, change: 'reverted', digest });
    return true;
  }
  if (pin.pendingDigest !== digest) {
    const { reasons } = await screener.screen(tool, definition, pin.pinnedAtUs);
    const update = { pendingDigest: digest, pendingDefinition: definition, pendingSinceUs: nowUs(), removedAtUs: null, pendingReasons: reasons };
    if (await store.updateToolPin(connection, tool, pin, update))
      changes.push(withReasons({ tool, change: pin.digest === null ? 'added' : 'changed', digest }, reasons));
  }
  return false;
}
