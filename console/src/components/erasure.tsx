import type { ComponentChildren } from 'preact';
import type { ErasureFacts } from '../../../src/recording/erasure-facts.js';
import type { ErasedNearby } from '../../../src/recording/session-groups.js';
import { erasureLabel, partialErasure, partialErasureLabel, unsignedErasure } from '../erasure';
import { time } from '../format';
import { Link } from './link';

/** Who erased a recording, when and why. */
function ErasedBy({ facts }: { facts: ErasureFacts }) {
  return (
    <>
      {time(facts.erasedAtUs)} by {facts.by ?? 'unknown'}
      {facts.reason ? ` — ${facts.reason}` : ''}
      {facts.vouched === false && <div class="flag deny">{unsignedErasure}</div>}
    </>
  );
}

/** A page's Erased entry, for an erased session or a group of one: its badge, who, when, why, and what it means. */
export function ErasureEntry({ facts, children }: { facts: ErasureFacts; children?: ComponentChildren }) {
  return (
    <>
      <dt>Erased</dt>
      <dd class="erased">
        <span class="flag deny">{erasureLabel(facts)}</span> <ErasedBy facts={facts} />
        <div class="hint">
          Its data key was destroyed (crypto-shredding): the recorded messages can never be read again.
          {/* Unsigned, verify fails it (the badge below): the chain and seal are not the whole story. */}
          {facts.vouched !== false && ' Its hash chain and seal still verify.'}
        </div>
        {children}
      </dd>
    </>
  );
}

/** A group's Erased entry when erased sessions of its user and connection lie near it: it may be partly erased. */
export function PartialErasureEntry({ nearby }: { nearby: readonly ErasedNearby[] }) {
  return (
    <>
      <dt>Erased</dt>
      <dd class="erased">
        <span class="flag deny">{partialErasureLabel(nearby)}</span> {partialErasure}
        <ul class="plain">
          {nearby.map((n) => (
            <li key={n.session}>
              <Link href={`/sessions/${encodeURIComponent(n.session)}`}>{n.session}</Link> <span class="flag deny">{erasureLabel(n.erased)}</span>{' '}
              <ErasedBy facts={n.erased} />
            </li>
          ))}
        </ul>
      </dd>
    </>
  );
}
