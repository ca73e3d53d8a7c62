import { ClientCapabilitiesStage } from '../pipeline/client-capabilities.js';
import type { FeatureModule } from './feature.js';

/** Client capabilities cut by policy (`connections.<name>.clientCapabilities.deny`), in both protocol eras. */
export const clientCapabilitiesModule: FeatureModule = {
  name: 'client capabilities',
  create: () => ({ stages: (connection) => ({ 'client-capabilities': ClientCapabilitiesStage.forConnection(connection.clientCapabilities) }) }),
};
