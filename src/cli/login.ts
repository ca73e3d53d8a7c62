import { Command } from 'commander';
import type { LoginOptions } from './login-action.js';

export function loginCommand(): Command {
  return new Command('login')
    .description('sign in to a gateway and cache the token for `portcullis connect`')
    .option('--dev <user>', 'sign in as a user of the embedded dev identity (a gateway with no OIDC issuer)')
    .option('--device', 'use the device flow: enter a code on another device (for machines without a browser)')
    .option('--no-browser', 'print the sign-in URL without opening a browser')
    .option('--issuer <url>', 'the OIDC issuer to sign in with (default: the first the gateway or its config names)')
    .option('--client-id <id>', 'the public OAuth client (default: the one the gateway or its config names for the issuer)')
    .option('-g, --gateway <url>', 'the gateway base URL (default: $PORTCULLIS_URL, the --config listen address, or http://127.0.0.1:8080)')
    .option('-c, --config <file>', "the gateway's config file (for --dev: its data directory holds the dev identity key)")
    .option('--print', 'also print the access token on stdout (for curl and scripts)')
    .action(async (opts: LoginOptions) => (await import('./login-action.js')).loginAction(opts));
}
