/** GET /api/sessions/<id>/verify: whether a recording's hash chain and seal are intact. */
export interface Verification {
  /** erased: the chain and seal verify as stored, and the data key is destroyed (nothing can read the payloads). */
  status: 'verified' | 'erased' | 'unsealed' | 'deleted' | 'failed';
  events: number;
  problems: Array<{ seq?: number; message: string }>;
  notes: string[];
}

/** A page's Integrity badge: verifying, the verification's outcome (its problems and notes in the title), or why it could not be had. */
export function Badge({ v }: { v: Verification | undefined | string }) {
  if (v === undefined) return <span class="badge">verifying…</span>;
  if (typeof v === 'string') return <span class="badge bad">could not verify: {v}</span>;
  const label =
    v.status === 'verified'
      ? 'Verified: hash chain and seal intact'
      : v.status === 'erased'
        ? 'Verified: hash chain and seal intact; erased, unreadable for good'
        : v.status === 'unsealed'
          ? 'Chain intact, not sealed yet'
          : v.status === 'failed'
            ? 'Verification FAILED'
            : 'Deleted';
  return (
    <span
      class={`badge verify-${v.status}`}
      role="status"
      title={[...v.problems.map((p) => (p.seq === undefined ? p.message : `event ${p.seq}: ${p.message}`)), ...v.notes].join('\n')}
    >
      {label} ({v.events} events)
    </span>
  );
}
