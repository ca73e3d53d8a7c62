import { DevIdentity, DevIdentityError } from '../identity/dev-identity.js';
import { spawn } from 'node:child_process';
import { isLoopbackHttpUrl } from '../net/loopback.js';
import { authorizationCodeLogin, deviceCodeLogin, type LoginTarget } from '../identity/oidc-login.js';
import { type CachedToken, writeCachedToken } from '../identity/token-cache.js';
import { loginTarget } from './login-target.js';
import { gatewayBaseUrl } from './gateway-url.js';
import { configForCommand } from './load-config.js';

export interface LoginOptions {
  dev?: string;
  device?: boolean;
  browser?: boolean;
  issuer?: string;
  clientId?: string;
  gateway?: string;
  config?: string;
  print?: boolean;
}

/** Opens a URL in the desktop's browser, without a shell; the URL is printed anyway, so failing to open is fine. */
function openBrowser(url: URL): void {
  if (url.protocol !== 'https:' && !isLoopbackHttpUrl(url)) return;
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(opener, [url.href], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // No browser here: the printed URL is the way.
  }
}

/** `login` with an OIDC provider: the authorization-code flow with PKCE, or the device flow. */
async function oidcLogin(opts: LoginOptions): Promise<void> {
  const base = await gatewayBaseUrl('login', opts.gateway, opts.config);
  let target: LoginTarget;
  try {
    target = await loginTarget(base, opts);
  } catch (err) {
    fail((err as Error).message, 2);
  }
  let token: CachedToken;
  try {
    token = opts.device
      ? await deviceCodeLogin(target, (uri, code, complete) => {
          process.stderr.write(
            `To sign in, visit ${complete ?? uri}${complete ? '' : ' and enter the code'}\n  code: ${code}\n(waiting for you to approve…)\n`,
          );
        })
      : await authorizationCodeLogin(target, (url) => {
          process.stderr.write(`Sign in at ${target.issuer} in your browser:\n  ${url.href}\n(waiting for the browser to come back…)\n`);
          if (opts.browser !== false) openBrowser(url);
        });
  } catch (err) {
    fail((err as Error).message);
  }
  writeCachedToken(base, token);
  process.stderr.write(
    `Signed in to ${base} as ${token.subject} (${target.issuer}) until ${new Date(token.expiresAtMs).toISOString()}${token.refreshToken ? '; it is refreshed when it expires' : ''}.\n` +
      `\`portcullis connect <connection>\` uses this token; \`portcullis mcp-config <connection>\` prints a client entry.\n`,
  );
  if (opts.print) process.stdout.write(`${token.accessToken}\n`);
}

function fail(message: string, code = 1): never {
  process.stderr.write(`portcullis login: ${message}\n`);
  process.exit(code);
}

/** `login --dev <user>`: a token from the embedded dev identity, signed with the key in the gateway's data directory. */
async function devLogin(user: string, opts: LoginOptions): Promise<void> {
  const config = configForCommand(opts.config);
  if (config.identity.issuers.length > 0) {
    fail(
      `this gateway's config names an OIDC issuer (${config.identity.issuers[0]!.issuer}), so its dev identity is off; run \`portcullis login\` without --dev`,
      2,
    );
  }
  const base = await gatewayBaseUrl('login', opts.gateway, opts.config);
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
      `\`portcullis connect <connection>\` uses this token; \`portcullis mcp-config <connection>\` prints a client entry.\n` +
      `The web console: ${dev.consoleLink(base)}\n`,
  );
  if (opts.print) process.stdout.write(`${minted.token}\n`);
}

/** `portcullis login`: a token from the dev identity (--dev) or from an OIDC provider, cached for the gateway. */
export async function loginAction(opts: LoginOptions): Promise<void> {
  if (opts.dev !== undefined) return devLogin(opts.dev, opts);
  return oidcLogin(opts);
}
