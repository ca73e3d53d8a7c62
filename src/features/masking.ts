import { maskFragment } from '../masking/fragment.js';
import { MaskingPolicies } from '../masking/policy.js';
import { recordingRedactor } from '../masking/recording-redactor.js';
import { MaskStage } from '../pipeline/mask.js';
import type { FeatureModule } from './feature.js';

/**
 * Masking: what servers send is masked before the client (and the recording) sees it. Its stage comes last but for the
 * list pin check, so on the way back it masks before any other stage sees a message.
 */
export const maskingModule: FeatureModule = {
  name: 'masking',
  create(ctx) {
    const masking = new MaskingPolicies(ctx.config.connections, ctx.config.masking.rules);
    return {
      stages: (connection) => ({
        mask: masking.enabled(connection.name) ? new MaskStage((session) => masking.forSession(session)) : undefined,
      }),
      sessions: {
        redactForRecording: (c) => (c.masking.recordArguments ? recordingRedactor(c.masking) : undefined),
        maskFragment: (c) =>
          masking.enabled(c.name)
            ? (text, session) => {
                const masker = masking.forSession(session);
                return masker === undefined ? text : maskFragment(masker, text);
              }
            : undefined,
      },
    };
  },
};
