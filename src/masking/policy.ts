import { randomBytes } from 'node:crypto';
import type { ConnectionConfig, MaskingConfig } from '../config/schema.js';
import type { SessionInfo } from '../pipeline/stage.js';
import { selectDetectors } from './catalog.js';
import type { Detector } from './detector.js';
import { customRegexDetector, JsonPathRule } from './custom.js';
import { Masker } from './engine.js';
import { replacer } from './replace.js';

/** The detectors a masking config turns on: those it selects, less those it excludes (by name or family). */
export function detectorsFor(config: MaskingConfig): Detector[] {
  const excluded = new Set(config.exclude);
  return selectDetectors(config.detectors).detectors.filter((d) => !excluded.has(d.name) && !excluded.has(d.family));
}

export function maskerFor(config: MaskingConfig, hashKey: Buffer = randomBytes(32)): Masker {
  const excluded = new Set(config.exclude);
  const custom = config.custom.filter((c) => !excluded.has(c.name) && !excluded.has('custom'));
  return new Masker({
    detectors: [...detectorsFor(config), ...custom.flatMap((c) => ('regex' in c ? [customRegexDetector(c)] : []))],
    pathRules: custom.flatMap((c) => ('jsonPath' in c ? [new JsonPathRule(c.name, c.jsonPath)] : [])),
    fieldWords: config.fields,
    replace: replacer(config.replace, hashKey),
    allow: config.allow,
  });
}

/**
 * Which masker a session's messages go through: its connection's masking. With keyed-hash replacement each
 * session has its own key, so a value masks the same way within a session and differently across sessions.
 */
export class MaskingPolicies {
  readonly #byConnection = new Map<string, Masker | undefined>();
  readonly #bySession = new WeakMap<SessionInfo, Masker>();

  constructor(private readonly connections: ReadonlyMap<string, ConnectionConfig>) {
    for (const c of connections.values()) {
      this.#byConnection.set(c.name, c.masking.enabled && c.masking.replace.kind !== 'hash' ? maskerFor(c.masking) : undefined);
    }
  }

  /** Whether any session of the connection is masked (else the stage is left out of its pipeline). */
  enabled(connection: string): boolean {
    return this.connections.get(connection)?.masking.enabled === true;
  }

  forSession(session: SessionInfo): Masker | undefined {
    const shared = this.#byConnection.get(session.connection);
    if (shared !== undefined) return shared;
    const config = this.connections.get(session.connection)?.masking;
    if (config === undefined || !config.enabled) return undefined;
    let own = this.#bySession.get(session);
    if (own === undefined) this.#bySession.set(session, (own = maskerFor(config)));
    return own;
  }
}
