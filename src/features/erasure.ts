import { SessionsEraseApi } from '../api/sessions-erase.js';
import type { FeatureModule } from './feature.js';

/** POST /api/sessions/erase: admins crypto-shred recordings (src/recording/erasure.ts). */
export const erasureModule: FeatureModule = {
  name: 'erasure',
  api: { path: '/api/sessions/erase', caller: 'person', readsBody: true, whenOff: 'erasure needs the recording store (recording.mode is off)' },
  create(ctx) {
    const recorder = ctx.recorder;
    if (!recorder) return undefined;
    const bus = ctx.cluster?.bus;
    // Keys destroyed here (by an admin, by retention) are forgotten by every replica; another's, here: whatever this one
    // has cached of them goes (it could still read them otherwise).
    if (bus !== undefined) recorder.onKeysDestroyed((owner) => bus.publish('erased', owner));
    bus?.on('erased', (c) => recorder.keyring?.forget(c.id));
    return { routes: new SessionsEraseApi(recorder, ctx.config.roles.admins).routes() };
  },
};
