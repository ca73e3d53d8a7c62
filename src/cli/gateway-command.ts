import type { Command } from 'commander';

/** The options of a command that talks to a running gateway's API as the signed-in user. */
export interface GatewayCommandOptions {
  gateway?: string;
  config?: string;
}

export function withGateway(cmd: Command): Command {
  return cmd
    .option('-g, --gateway <url>', 'the gateway base URL (default: $PORTCULLIS_URL, the --config listen address, or http://127.0.0.1:8080)')
    .option('-c, --config <file>', "the gateway's config file, to find its address");
}

/** A store time (µs) to the second, for tables. */
export const isoSeconds = (us: number | null) => (us === null ? '-' : new Date(us / 1000).toISOString().replace(/\.\d+Z$/, 'Z'));
