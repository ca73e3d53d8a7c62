import type { ComponentChildren } from 'preact';
import { type Unreadable, unreadableLabel, unreadableMeaning } from '../unreadable';

/**
 * A page's Unreadable entry, for a session (or a group of one) whose recording the gateway cannot read though it was
 * not erased: its badge, what that means, why, and what to do (as ErasureEntry says an erasure).
 */
export function UnreadableEntry({ u, children }: { u: Unreadable; children?: ComponentChildren }) {
  return (
    <>
      <dt>Unreadable</dt>
      <dd class="unreadable">
        <span class="flag deny">{unreadableLabel(u)}</span> {unreadableMeaning(u)}
        <div>Why: {u.reason}</div>
        {u.fix !== undefined && <div>What to do: {u.fix}</div>}
        <div class="hint">Verifying needs no key: its hash chain and seal are checked below.</div>
        {children}
      </dd>
    </>
  );
}
