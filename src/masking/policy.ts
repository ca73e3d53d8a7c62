import { randomBytes } from 'node:crypto';
import type { MaskingConfig, MaskingRule } from './config.js';
import type { CallerOnConnection } from '../core/identity.js';
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
    maxDecodedBytes: config.maxDecodedSize,
  });
}

/**
 * Which masker a session's messages go through: its connection's masking, with the gateway's rules for the
 * caller's groups applied over it (in order; the caller's groups as of the message, so a changed token changes
 * the masking at once). With keyed-hash replacement each session has its own key, so a value masks the same way
 * within a session and differently across sessions.
 */
export class MaskingPolicies {
  /** Maskers shared by sessions, by connection and the rules that applied. */
  readonly #shared = new Map<string, Masker | undefined>();
  readonly #bySession = new WeakMap<CallerOnConnection, Map<string, Masker | undefined>>();

  constructor(
    /** Each connection's masking (a ConnectionConfig has it). */
    private readonly connections: ReadonlyMap<string, { readonly masking: MaskingConfig }>,
    private readonly rules: readonly MaskingRule[] = [],
  ) {}

  /** Whether any session of the connection may be masked (else the stage is left out of its pipeline). */
  enabled(connection: string): boolean {
    const config = this.connections.get(connection)?.masking;
    if (config === undefined) return false;
    return config.enabled || this.rules.some((r) => r.enabled === true && (r.connections === undefined || r.connections.includes(connection)));
  }

  forSession(session: CallerOnConnection): Masker | undefined {
    const base = this.connections.get(session.connection)?.masking;
    if (base === undefined) return undefined;
    // No rule for this connection: every session shares the connection's masker (the common case: no work per message).
    if (!this.rules.some((r) => r.connections === undefined || r.connections.includes(session.connection)))
      return this.#masker(session, session.connection, base);
    const groups = session.identity.groups;
    const applied: number[] = [];
    this.rules.forEach((r, i) => {
      if ((r.connections === undefined || r.connections.includes(session.connection)) && r.groups.some((g) => g === '*' || groups.includes(g))) applied.push(i);
    });
    const key = `${session.connection}|${applied.join(',')}`;
    const config = applied.reduce<MaskingConfig>((c, i) => {
      const { groups: _g, connections: _c, ...over } = this.rules[i]!;
      return { ...c, ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) };
    }, base);
    return this.#masker(session, key, config);
  }

  /** The masker for a config, made once: shared by every session, or the session's own with keyed hashes. */
  #masker(session: CallerOnConnection, key: string, config: MaskingConfig): Masker | undefined {
    let cache = this.#shared;
    if (config.replace.kind === 'hash') {
      let own = this.#bySession.get(session);
      if (own === undefined) this.#bySession.set(session, (own = new Map()));
      cache = own;
    }
    if (!cache.has(key)) cache.set(key, config.enabled ? maskerFor(config) : undefined);
    return cache.get(key);
  }
}
