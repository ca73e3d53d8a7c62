import type { ConnectionConfig } from '../config/schema.js';
import type { MountedApi } from '../http/kit/route.js';
import type { Stage } from '../pipeline/stage.js';
import { contributions, type Feature, type FeatureContext, type FeatureModule, stagesOf } from './feature.js';

/** The features running in one gateway, built from the registration list in order (a feature that is off is absent). */
export class Features {
  readonly #running = new Map<FeatureModule<Feature>, Feature>();
  /** The APIs of the features, on or off, in registration order. */
  readonly apis: readonly MountedApi[];

  constructor(modules: readonly FeatureModule[], base: Omit<FeatureContext, 'feature'>) {
    const ctx: FeatureContext = { ...base, feature: (module) => this.get(module) };
    for (const module of modules) {
      const feature = module.create(ctx);
      if (feature !== undefined) this.#running.set(module, feature);
    }
    this.apis = modules.flatMap((module) => {
      if (module.api === undefined) return [];
      const routes = this.#running.has(module) ? this.#running.get(module)?.routes : module.offRoutes?.(ctx);
      return [{ mount: module.api, routes }];
    });
  }

  /** The running part of a feature, or undefined when it is off. */
  get<T extends Feature>(module: FeatureModule<T>): T | undefined {
    return this.#running.get(module) as T | undefined;
  }

  /** A connection's pipeline, in slot order. */
  stagesFor(connection: ConnectionConfig): Stage[] {
    return stagesOf([...this.#running.values()], connection);
  }

  /** What the features add to the session registry's or the HTTP port's options. */
  contributions<K extends 'sessions' | 'http'>(key: K): NonNullable<Feature[K]> {
    return contributions([...this.#running.values()], key);
  }

  async start(): Promise<void> {
    for (const feature of this.#running.values()) await feature.start?.();
  }

  async afterRecording(): Promise<void> {
    for (const feature of this.#running.values()) await feature.afterRecording?.();
  }

  async stop(): Promise<void> {
    for (const feature of this.#running.values()) await feature.stop?.();
  }
}
