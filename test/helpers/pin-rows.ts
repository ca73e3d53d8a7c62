import type { ToolPinRow } from '../../src/store/pin-types.js';

let counter = 0;

/** A tool pin as the store holds it: approved, nothing waiting, a tool name of its own; `over` changes any field. */
export function toolPin(over: Partial<ToolPinRow> = {}): ToolPinRow {
  counter++;
  return {
    connection: 'prod',
    tool: `tool-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    digest: 'a'.repeat(64),
    definition: JSON.stringify({ name: 'drop_table', description: 'quote " backslash \\ ünïcode 🐉', inputSchema: { type: 'object' } }),
    pendingDigest: null,
    pendingDefinition: null,
    pendingSinceUs: null,
    removedAtUs: null,
    pinnedAtUs: 1_790_000_000_000_000 + counter,
    approvedAtUs: null,
    approvedBy: null,
    reasons: [],
    pendingReasons: [],
    duplicatedSinceUs: null,
    ...over,
  };
}
