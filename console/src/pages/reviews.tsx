import { useCallback, useEffect, useState } from 'preact/hooks';
import { Alert } from '../components/alert';
import { get, type Me, post } from '../api';
import { JsonView } from '../components/json-view';
import { Link } from '../components/link';
import { duration, person, time } from '../format';
import { type LiveEvent, useLive } from '../live';
import type { ReviewView } from '../../../src/reviews/view.js';
import type { AccessRequestRow } from '../../../src/store/access-types.js';

/** The API's own shapes (type-only imports: nothing of the server is bundled). */
type Review = ReviewView;
type AccessRequest = AccessRequestRow;

/** Held calls and access requests: what waits for this person's decision, and what they asked for themselves. */
export function ReviewsPage({ me, focus }: { me: Me; focus?: string | undefined }) {
  const [reviews, setReviews] = useState<Review[] | undefined>(undefined);
  const [requests, setRequests] = useState<AccessRequest[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  const load = useCallback(() => {
    get<{ reviews: Review[] }>('/api/reviews').then(
      (r) => setReviews(r.reviews),
      (err: Error) => setError(err.message),
    );
    get<{ requests: AccessRequest[] }>('/api/access').then(
      (r) => setRequests(r.requests),
      () => setRequests([]),
    );
  }, []);
  useEffect(load, [load]);
  const onLive = useCallback(
    (e: LiveEvent) => {
      if (e.type === 'reviews' || e.type === 'access-requests') load();
    },
    [load],
  );
  useLive(onLive);
  useEffect(() => {
    if (focus !== undefined && reviews !== undefined) document.getElementById(`review-${focus}`)?.scrollIntoView({ block: 'start' });
  }, [focus, reviews]);

  const pending = (reviews ?? []).filter((r) => r.status === 'pending');
  const decided = (reviews ?? []).filter((r) => r.status !== 'pending').slice(0, 50);
  return (
    <>
      <h1>Reviews</h1>
      <Alert message={error} />
      <section aria-labelledby="pending-heading">
        <h2 id="pending-heading">
          Waiting for a decision <span class="badge">{pending.length}</span>
        </h2>
        {reviews === undefined ? (
          <p>Loading…</p>
        ) : pending.length === 0 ? (
          <p class="hint">Nothing waits for you.</p>
        ) : (
          pending.map((r) => <ReviewCard key={r.id} r={r} me={me} focused={r.id === focus} onDecided={load} />)
        )}
      </section>
      <section aria-labelledby="access-heading">
        <h2 id="access-heading">Access requests</h2>
        {requests === undefined ? (
          <p>Loading…</p>
        ) : requests.length === 0 ? (
          <p class="hint">No access requests.</p>
        ) : (
          requests.slice(0, 50).map((a) => <AccessCard key={a.id} a={a} me={me} onDecided={load} />)
        )}
      </section>
      <section aria-labelledby="decided-heading">
        <h2 id="decided-heading">Decided lately</h2>
        {decided.length === 0 ? (
          <p class="hint">None yet.</p>
        ) : (
          decided.map((r) => <ReviewCard key={r.id} r={r} me={me} focused={r.id === focus} onDecided={load} />)
        )}
      </section>
    </>
  );
}

function ReviewCard({ r, me, focused, onDecided }: { r: Review; me: Me; focused: boolean; onDecided: () => void }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const own = r.requester.subject === me.identity.subject;
  const decide = async (action: 'approve' | 'reject') => {
    setBusy(true);
    setError(undefined);
    try {
      await post(`/api/reviews/${encodeURIComponent(r.id)}/${action}`, action === 'approve' ? { note: reason || undefined } : { reason });
      onDecided();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const reasonId = `reason-${r.id}`;
  return (
    <article id={`review-${r.id}`} class={`card review review-${r.status}${focused ? ' focused' : ''}`} aria-labelledby={`title-${r.id}`}>
      <h3 id={`title-${r.id}`}>
        {r.method} {r.target ? <code>{r.target}</code> : null} on {r.connection}
        {r.virtual ? (
          <>
            {' '}
            through {r.virtual.server}
            {r.virtual.target ? (
              <>
                {' '}
                as <code>{r.virtual.target}</code>
              </>
            ) : null}
          </>
        ) : null}{' '}
        <span class={`status status-${r.status}`}>{r.status}</span>
      </h3>
      <dl class="meta">
        <dt>Who</dt>
        <dd>{person(r.requester)}</dd>
        <dt>Rule</dt>
        <dd>{r.rule}</dd>
        <dt>Approvers</dt>
        <dd>
          {r.approvers.join(', ')} ({r.approvals.length} of {r.approvalsNeeded} approvals
          {r.approvals.length > 0 ? `: ${r.approvals.map((a) => person(a)).join(', ')}` : ''})
        </dd>
        <dt>Asked</dt>
        <dd>
          {time(r.createdAt)};{' '}
          {r.status === 'pending'
            ? `times out at ${time(r.expiresAt)}`
            : `decided ${time(r.decidedAt)}${r.decider ? ` by ${person(r.decider)}` : ''}${r.note ? `: ${r.note}` : ''}`}
        </dd>
        <dt>Session</dt>
        <dd>
          <Link href={`/sessions/${encodeURIComponent(r.session)}`}>{r.session}</Link>
        </dd>
      </dl>
      <h4>The full call</h4>
      <JsonView value={r.params} openDepth={3} />
      {r.status === 'pending' && (
        <div class="decide">
          {own ? (
            <p class="hint">This is your own call: another approver must decide it.</p>
          ) : (
            <>
              <label for={reasonId}>Reason or note</label>
              <input id={reasonId} value={reason} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} placeholder="required to reject" />
              <button type="button" class="primary" disabled={busy} onClick={() => void decide('approve')}>
                Approve
              </button>
              <button type="button" class="danger" disabled={busy || reason.trim() === ''} onClick={() => void decide('reject')}>
                Reject
              </button>
            </>
          )}
          <Alert message={error} />
        </div>
      )}
    </article>
  );
}

function AccessCard({ a, me, onDecided }: { a: AccessRequest; me: Me; onDecided: () => void }) {
  const [note, setNote] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const own = a.requesterSubject === me.identity.subject;
  const decide = async (action: 'approve' | 'deny') => {
    try {
      await post(`/api/access/${encodeURIComponent(a.id)}/${action}`, { note: note || undefined });
      onDecided();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <article class={`card access access-${a.status}`} aria-label={`Access request ${a.id}`}>
      <h3>
        {a.requesterEmail ?? a.requesterSubject} asks for {a.connection} for {duration(a.durationMs)}{' '}
        <span class={`status status-${a.status}`}>{a.status}</span>
      </h3>
      <p>“{a.reason}”</p>
      {a.status === 'pending' && !own && (
        <div class="decide">
          <label for={`note-${a.id}`}>Note</label>
          <input id={`note-${a.id}`} value={note} onInput={(e) => setNote((e.currentTarget as HTMLInputElement).value)} />
          <button type="button" class="primary" onClick={() => void decide('approve')}>
            Approve
          </button>
          <button type="button" class="danger" onClick={() => void decide('deny')}>
            Deny
          </button>
        </div>
      )}
      <Alert message={error} />
    </article>
  );
}
