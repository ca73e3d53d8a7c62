import { auditStreamSummaries } from '../console/audit-summary.js';
import { connectionSummaries } from '../console/connection-summary.js';
import { auditModule } from './audit.js';
import { ConsoleEdge } from '../console/console-edge.js';
import { ConsoleSessions } from '../console/console-sessions.js';
import { consoleWarnings } from '../console/console-warnings.js';
import { consoleIssuers, OidcSignIn } from '../console/oidc-sign-in.js';
import { StaticFiles } from '../console/static-files.js';
import { nowUs } from '../recording/time.js';
import type { FeatureModule } from './feature.js';

/** The web console: its sign-in (OIDC, or the dev identity), its sessions in the store, its live events and pages. */
export const consoleModule: FeatureModule = {
  name: 'console',
  create(ctx) {
    const { config, store, log } = ctx;
    for (const w of consoleWarnings(config)) log.warn(w);
    if (!store || !config.console.enabled) return undefined;
    const issuers = consoleIssuers(config.identity.issuers);
    const files = new StaticFiles();
    if (!files.built) log.warn('the web console was not built (npm run build bundles it into dist/console); / answers 503 until it is');
    const prune = setInterval(() => void store.pruneConsole(nowUs()).catch(() => {}), 10 * 60_000);
    prune.unref();
    const edge = new ConsoleEdge({
      sessions: new ConsoleSessions(store, config.console.sessionLifetimeMs),
      signIn: new OidcSignIn(issuers, store, ctx.verifier),
      issuers,
      devIdentity: ctx.devIdentity,
      verifier: ctx.verifier,
      live: ctx.live,
      files,
      publicUrls: ctx.publicUrls,
      roles: config.roles,
      connections: () => {
        const open = new Map<string, number>();
        for (const s of ctx.registry().all()) open.set(s.connection, (open.get(s.connection) ?? 0) + 1);
        return connectionSummaries(config.connections.values(), (name) => open.get(name) ?? 0);
      },
      audit: () => auditStreamSummaries(ctx.feature(auditModule)?.status() ?? []),
      log: log.child({ part: 'console' }),
    });
    return { http: { console: { edge, files } }, stop: () => clearInterval(prune) };
  },
};
