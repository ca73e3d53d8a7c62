import { AuditShipper, type AuditSinkStatus } from '../audit/shipper.js';
import type { Feature, FeatureModule } from './feature.js';

/** How long a stopping gateway gives its sinks to take the sessions' closes. */
const finishWithinMs = 3000;

export interface AuditFeature extends Feature {
  /** Each sink's backlog, last delivery and failures (/metrics, the console). */
  status(): AuditSinkStatus[];
}

/**
 * Audit streams (`audit.sinks`): a shipper per sink, told of every durable commit by the recorder and scanning the
 * store's backlog at start and every `audit.pollInterval`. Off without sinks; needs the store (the config refuses
 * sinks with recording off).
 */
export const auditModule: FeatureModule<AuditFeature> = {
  name: 'audit',
  create(ctx) {
    const { config, store, recorder, cluster } = ctx;
    if (config.audit.sinks.length === 0 || store === undefined || recorder === undefined) return undefined;
    const log = ctx.log.child({ part: 'audit' });
    const othersAlive = () =>
      cluster === undefined
        ? []
        : cluster.membership.members().flatMap((m) => (m.id !== recorder.instanceId && cluster.membership.isAlive(m.id) ? [m.id] : []));
    const shippers = config.audit.sinks.map(
      (s) =>
        new AuditShipper({
          store,
          sink: s.create({ log, name: s.name }),
          kind: s.kind,
          events: s.events,
          othersAlive,
          log,
          pollMs: config.audit.pollIntervalMs,
          ...(ctx.timings.auditRetryMs === undefined ? {} : { retryMs: ctx.timings.auditRetryMs, maxRetryMs: ctx.timings.auditRetryMs * 4 }),
        }),
    );
    recorder.onCommitted((sessions, batch) => {
      for (const s of shippers) s.committed(sessions, batch);
    });
    // A replica left or went silent: its sessions (sealed by a survivor) are now the business of those left.
    cluster?.membership.onGone(() => {
      for (const s of shippers) s.rescan();
    });
    return {
      status: () => shippers.map((s) => s.status()),
      start: async () => {
        for (const s of shippers) s.start();
      },
      // The shippers go on while the sessions end, then ship the sessions' closes (a few seconds at most).
      afterRecording: async () => {
        await Promise.all(shippers.map((s) => s.finish(finishWithinMs)));
      },
    };
  },
};
