/**
 * The gateway's base URL for a client command: --gateway, else $PORTCULLIS_URL, else the listen address of
 * --config, else http://127.0.0.1:8080. Exits 2 when it is not a URL.
 */
export async function gatewayBaseUrl(command: string, gateway: string | undefined, configFile: string | undefined): Promise<string> {
  let base = gateway ?? process.env.PORTCULLIS_URL;
  if (base === undefined && configFile !== undefined) {
    // The config loader (its schema, YAML, CEL) is loaded only for a command given --config.
    const { configForCommand } = await import('./load-config.js');
    const config = configForCommand(configFile);
    if (config.http.publicUrl !== undefined) base = config.http.publicUrl;
    else {
      const { host, port } = config.listen;
      base = `http://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
    }
  }
  base ??= 'http://127.0.0.1:8080';
  try {
    const url = new URL(base);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
    return base.replace(/\/+$/, '');
  } catch {
    process.stderr.write(`portcullis ${command}: --gateway expects a URL such as http://127.0.0.1:8080, found ${JSON.stringify(base)}\n`);
    process.exit(2);
  }
}
