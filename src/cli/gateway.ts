import { Command } from 'commander';
import type { GatewayOptions } from './gateway-action.js';

export function gatewayCommand(): Command {
  return new Command('gateway')
    .description('run the gateway')
    .option('-c, --config <file>', 'config file (YAML); without it, embedded quick-start defaults')
    .option('--listen <host:port>', 'override the listen address from the config')
    .option('--log-format <format>', 'auto (pretty on a terminal, JSON otherwise), json or pretty; overrides log.format')
    .action(async (opts: GatewayOptions) => (await import('./gateway-action.js')).gatewayAction(opts));
}
