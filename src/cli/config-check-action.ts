import { ConfigError, loadConfigFile } from '../config/load.js';
import { describeStore } from '../store/open.js';
import { consoleWarnings } from '../console/console-warnings.js';

/** `portcullis config check`: a config file validated, summed up in a line, and its warnings; exit code 1 when invalid. */
export function configCheckAction(file: string): void {
  try {
    const config = loadConfigFile(file);
    const names = [...config.connections.values()].map((c) => `${c.name} (${c.upstream.kind})`);
    const recording = config.recording.mode === 'off' ? 'recording off' : `recording ${config.recording.mode} to ${describeStore(config.store.reveal())}`;
    const identity =
      config.identity.issuers.length > 0
        ? `identity: ${config.identity.issuers.map((i) => i.issuer).join(', ')}`
        : `identity: dev identity (users: ${Object.keys(config.identity.dev.users).join(', ') || 'none'})`;
    const audit = config.audit.sinks.length > 0 ? `; audit streams: ${config.audit.sinks.map((s) => `${s.name} (${s.kind})`).join(', ')}` : '';
    process.stdout.write(
      `${file}: valid; listen ${config.listen.host}:${config.listen.port}; connections: ${names.join(', ')}; ${recording}; ${identity}${audit}\n`,
    );
    for (const c of config.connections.values()) {
      if (c.access.groups.length === 0)
        process.stdout.write(`warning: connection '${c.name}' has no access.groups, so nobody may open it; list groups, or ["*"] for every signed-in user\n`);
    }
    for (const w of consoleWarnings(config)) process.stdout.write(`warning: ${w}\n`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 1;
  }
}
