import { ConfigError, loadConfigFile } from '../config/load.js';
import { describeStore } from '../store/open.js';
import { consoleWarnings } from '../console/console-warnings.js';
import { plainRecordingWarning } from '../encryption/start-checks.js';

/** `portcullis config check`: a config file validated, summed up in a line, and its warnings; exit code 1 when invalid. */
export function configCheckAction(file: string): void {
  try {
    const config = loadConfigFile(file);
    const all = [...config.connections.values()];
    const names = all.filter((c) => c.upstream.kind !== 'virtual').map((c) => `${c.name} (${c.upstream.kind})`);
    const virtual = all.flatMap((c) => (c.upstream.kind === 'virtual' ? [`${c.name} (${c.upstream.members.map((m) => m.connection).join(', ')})`] : []));
    const encryption = config.recording.encryption;
    const encrypted =
      encryption === undefined
        ? ''
        : `, encrypted (current KEK ${encryption.current}; KEKs: ${encryption.keys.map((k) => `${k.id} (${k.provider})`).join(', ')})`;
    const recording =
      config.recording.mode === 'off' ? 'recording off' : `recording ${config.recording.mode} to ${describeStore(config.store.reveal())}${encrypted}`;
    const identity =
      config.identity.issuers.length > 0
        ? `identity: ${config.identity.issuers.map((i) => i.issuer).join(', ')}`
        : `identity: dev identity (users: ${Object.keys(config.identity.dev.users).join(', ') || 'none'})`;
    const audit = config.audit.sinks.length > 0 ? `; audit streams: ${config.audit.sinks.map((s) => `${s.name} (${s.kind})`).join(', ')}` : '';
    process.stdout.write(
      `${file}: valid; listen ${config.listen.host}:${config.listen.port}; connections: ${names.join(', ')}; ${virtual.length > 0 ? `virtual servers: ${virtual.join(', ')}; ` : ''}${recording}; ${identity}${audit}\n`,
    );
    for (const c of config.connections.values()) {
      if (c.access.groups.length === 0)
        process.stdout.write(
          `warning: ${c.upstream.kind === 'virtual' ? 'virtual server' : 'connection'} '${c.name}' has no access.groups, so nobody may open it; list groups, or ["*"] for every signed-in user\n`,
        );
    }
    for (const w of consoleWarnings(config)) process.stdout.write(`warning: ${w}\n`);
    if (config.recording.mode !== 'off' && encryption === undefined) process.stdout.write(`warning: ${plainRecordingWarning}\n`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 1;
  }
}
