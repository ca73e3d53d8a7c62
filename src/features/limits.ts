import { RequestLimitsStage } from '../limits/request-stage.js';
import type { FeatureModule } from './feature.js';

/**
 * Limits on requests per principal, connection and gateway: their stage comes first, so a request over them costs
 * nothing more. The limits themselves are the gateway's (sessions and unauthenticated requests are limited before
 * any stage runs), so this module only places the stage.
 */
export const limitsModule: FeatureModule = {
  name: 'limits',
  create: (ctx) => ({ stages: (connection) => ({ limits: new RequestLimitsStage(ctx.limits, connection) }) }),
};
