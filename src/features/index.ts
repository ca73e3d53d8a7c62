import { accessRequestsModule } from './access-requests.js';
import { agentsModule } from './agents.js';
import { auditModule } from './audit.js';
import { clientCapabilitiesModule } from './client-capabilities.js';
import { connectionAccessModule } from './connection-access.js';
import { consoleModule } from './console.js';
import { erasureModule } from './erasure.js';
import type { FeatureModule } from './feature.js';
import { guardrailsModule } from './guardrails.js';
import { limitsModule } from './limits.js';
import { maskingModule } from './masking.js';
import { pinsModule } from './pins.js';
import { reviewsModule } from './reviews.js';
import { virtualServersModule } from './virtual.js';
import { telemetryModule } from './telemetry.js';

/**
 * Every feature of the gateway, one line each. A feature is built after the ones above it (it may use them through
 * `ctx.feature(...)`), started and stopped in this order; where its stages sit in the pipeline is its slot's business.
 */
export const featureModules: readonly FeatureModule[] = [
  limitsModule,
  connectionAccessModule,
  clientCapabilitiesModule,
  accessRequestsModule,
  erasureModule,
  reviewsModule,
  pinsModule,
  guardrailsModule,
  maskingModule,
  agentsModule,
  virtualServersModule,
  auditModule,
  consoleModule,
  telemetryModule,
];
