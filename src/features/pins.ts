import { PinsApi } from '../api/pins.js';
import { ToolPins } from '../pins/tool-pins.js';
import { ToolPinStage } from '../pipeline/tool-pins.js';
import type { Feature, FeatureModule } from './feature.js';
import { rereadAtReconcile } from './reconcile.js';

export interface PinsFeature extends Feature {
  readonly pins: ToolPins;
}

/** Tool pinning: calls to a quarantined tool are refused, lists are checked against the pins, and /api/pins. */
export const pinsModule: FeatureModule<PinsFeature> = {
  name: 'tool pins',
  api: { path: '/api/pins', caller: 'person', readsBody: true, whenOff: 'tool pins need the recording store (recording.mode is off)' },
  create(ctx) {
    if (!ctx.store) {
      if ([...ctx.config.connections.values()].some((c) => c.tools.pin)) {
        ctx.log.warn('tool pinning needs the recording store, and recording is off: tool definitions are not pinned');
      }
      return undefined;
    }
    const pins = new ToolPins({
      store: ctx.store,
      log: ctx.log.child({ part: 'tool-pins' }),
      admins: ctx.config.roles.admins,
      scan: ctx.config.pins.scan,
      duplicateNames: ctx.config.pins.duplicateNames,
      onStored: (connection) => ctx.cluster?.bus.publish('pin', connection),
    });
    const reload = (what: Promise<void>) =>
      void what.catch((err: unknown) => ctx.log.warn({ err: (err as Error).message }, 'tool pins changed elsewhere could not be read'));
    ctx.cluster?.bus.on('pin', (c) => reload(pins.reload(c.id)));
    // Missed notifications: read again on reconnecting, and at each reconciliation (one the approver could not send).
    ctx.cluster?.bus.onResync(() => reload(pins.reloadAll()));
    const stopRereading = rereadAtReconcile(ctx.cluster, undefined, () => reload(pins.reloadAll()));
    return {
      pins,
      // Not read again while the gateway shuts down (the store is closing).
      stop: async () => stopRereading(),
      routes: new PinsApi(pins, ctx.mayOpen).routes(),
      stages: (connection) => {
        if (!connection.tools.pin) return {};
        const pinning = { connection: connection.name, pins, mayOpen: ctx.mayOpen };
        // Pinned lists are checked next to the server (last), so that what is pinned is what the server sent, unmasked.
        return { 'pin-calls': new ToolPinStage(pinning, 'calls'), 'pin-lists': new ToolPinStage(pinning, 'lists') };
      },
    };
  },
};
