import type { ChangeBus } from '../cluster/change-bus.js';
import type { Session, SessionObserver } from '../session/session.js';
import { closedEvent, type LiveEvent, type LiveEvents, openedEvent } from './live-events.js';

/**
 * The console's live view across replicas: sessions opening and ending here are announced on the change bus, and
 * those of other replicas are shown to this replica's console listeners (with the same visibility: the session's
 * owner and the auditors), so any replica's console shows every replica's sessions as they come and go. The event is
 * shown as another replica sent it, so only one signed under cluster.secret is: without the secret, whoever can NOTIFY
 * could otherwise put sessions in front of an auditor; then other replicas' sessions show when the console reads them.
 */
export class LiveRelay implements SessionObserver {
  constructor(
    private readonly bus: ChangeBus,
    live: LiveEvents,
  ) {
    bus.on('session', (c) => {
      // Shown as sent, not read from the store: only when a replica signed it under cluster.secret.
      if (!c.verified) return;
      const d = c.data as { event?: LiveEvent; owner?: { subject?: unknown; issuer?: unknown } } | undefined;
      const owner = d?.owner;
      const event = d?.event;
      if (event === undefined || typeof owner?.subject !== 'string' || typeof owner.issuer !== 'string') return;
      if (event.type !== 'session-opened' && event.type !== 'session-closed') return;
      live.relay(event, { subject: owner.subject, issuer: owner.issuer });
    });
  }

  opened(session: Session): void {
    this.#announce(session, openedEvent(session));
  }

  closed(session: Session, reason: string): void {
    this.#announce(session, closedEvent(session, reason));
  }

  #announce(session: Session, event: LiveEvent): void {
    const { subject, issuer } = session.identity;
    this.bus.publish('session', session.id, { event, owner: { subject, issuer } });
  }
}
