import { AccessRequestsApi } from '../api/access-requests.js';
import { AccessRequests } from '../identity/access-requests.js';
import type { FeatureModule } from './feature.js';
import { rereadAtReconcile } from './reconcile.js';

/** Just-in-time access: requests, grants consulted when no group admits a caller, their expiry, and /api/access. */
export const accessRequestsModule: FeatureModule = {
  name: 'access requests',
  api: { path: '/api/access', caller: 'person', readsBody: true, whenOff: 'access requests need the recording store (recording.mode is off)' },
  create(ctx) {
    if (!ctx.store || !ctx.recorder) return undefined;
    const log = ctx.log;
    const requests = new AccessRequests({
      store: ctx.store,
      recorder: ctx.recorder,
      ...(ctx.recorder.keyring === undefined ? {} : { keyring: ctx.recorder.keyring }),
      access: ctx.access,
      log,
      inUse: [...ctx.config.connections.values()].some((c) => ctx.access(c.name)?.takesRequests),
      onChanged: (id) => {
        ctx.live.accessRequestsChanged();
        ctx.cluster?.bus.publish('access', id);
      },
      onGrantEnded: (grant, why) => {
        void ctx
          .registry()
          .endGrant(grant.id, why)
          .then((n) => {
            if (n > 0) log.info({ grant: grant.id, subject: grant.requesterSubject, sessions: n }, `${why}: its sessions ended`);
          });
      },
    });
    const changed = () => void requests.changed().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'access grants could not be refreshed'));
    ctx.cluster?.bus.on('access', () => {
      ctx.live.accessRequestsChanged();
      changed();
    });
    ctx.cluster?.bus.onResync(changed);
    // Read again at each reconciliation too: other replicas' decisions whose notification was lost, and expiries.
    const stopRefreshes = rereadAtReconcile(ctx.cluster, ctx.timings.grantRefreshMs, changed);
    return {
      routes: new AccessRequestsApi(requests).routes(),
      http: { grants: requests },
      start: () => requests.start(),
      stop: () => {
        stopRefreshes();
        requests.stop();
      },
    };
  },
};
