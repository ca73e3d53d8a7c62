import { Command } from 'commander';
import { DevIdentity, DevIdentityError } from '../identity/dev-identity.js';
import { writeCachedToken } from '../identity/token-cache.js';
import { gatewayBaseUrl } from './gateway-url.js';
import { configForCommand } from './load-config.js';

interface LoginOptions {
  dev?: string;
  device?: boolean;
  gateway?: string;
  config?: string;
  print?: boolean;
}

function fail(message: string, code = 1): never {
  process.stderr.write(`portcullis login: ${message}\n`);
  process.exit(code);
}

/** `login --dev <user>`: a token from the embedded dev identity, signed with the key in the gateway's data directory. */
async function devLogin(user: string, opts: LoginOptions): Promise<void> {
  const config = configForCommand(opts.config);
  if (config.identity.issuers.length > 0) {
    fail(`this gateway's config names an OIDC issuer (${config.identity.issuers[0]!.issuer}), so its dev identity is off; run \`portcullis login\` without --dev`, 2);
  }
  const base = gatewayBaseUrl('login', opts.gateway, opts.config);
  let dev: DevIdentity;
  let minted: { token: string; expiresAtMs: number };
  try {
    dev = await DevIdentity.load(config.dataDir, config.identity.dev);
    minted = await dev.mint(user);
  } catch (err) {
    if (err instanceof DevIdentityError) fail(err.message, 2);
    fail(`the dev identity key in ${config.dataDir} cannot be used: ${(err as Error).message} (run this as the gateway's user, with its --config)`);
  }
  writeCachedToken(base, { accessToken: minted.token, expiresAtMs: minted.expiresAtMs, issuer: dev.issuer.config.issuer, subject: user });
  const groups = config.identity.dev.users[user]!;
  process.stderr.write(
    `Signed in to ${base} as ${user} (dev identity; groups: ${groups.length > 0 ? groups.join(', ') : 'none'}) until ${new Date(minted.expiresAtMs).toISOString()}.\n` +
      `\`portcullis connect <connection>\` uses this token; \`portcullis mcp-config <connection>\` prints a client entry.\n`,
  );
  if (opts.print) process.stdout.write(`${minted.token}\n`);
}

export function loginCommand(): Command {
  return new Command('login')
    .description('sign in to a gateway and cache the token for `portcullis connect`')
    .option('--dev <user>', 'sign in as a user of the embedded dev identity (a gateway with no OIDC issuer)')
    .option('-g, --gateway <url>', 'the gateway base URL (default: $PORTCULLIS_URL, the --config listen address, or http://127.0.0.1:8080)')
    .option('-c, --config <file>', "the gateway's config file (for --dev: its data directory holds the dev identity key)")
    .option('--print', 'also print the access token on stdout (for curl and scripts)')
    .action(async (opts: LoginOptions) => {
      if (opts.dev !== undefined) return devLogin(opts.dev, opts);
      fail('signing in with an OIDC provider (authorization code with PKCE, or --device) is not available in this build yet; use --dev <user> on a gateway with the dev identity, or set PORTCULLIS_TOKEN', 2);
    });
}
