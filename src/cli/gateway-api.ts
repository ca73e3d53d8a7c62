import { currentToken } from './token-source.js';

/**
 * A call to the gateway's HTTP API as the signed-in user (the token from `portcullis login`, or
 * $PORTCULLIS_TOKEN), or with `machineKey` (the gateway's local API key, for a command run beside the gateway).
 * Exits 1 with the gateway's own words when it refuses, or when it cannot be reached.
 */
export async function callGateway(
  command: string,
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  machineKey?: string,
): Promise<Record<string, unknown>> {
  const report = (line: string) => process.stderr.write(`portcullis ${command}: ${line}\n`);
  const token = machineKey ?? (await currentToken(base, report));
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    report(`cannot reach the gateway at ${base} (${cause}); is it running, and is --gateway right?`);
    process.exit(1);
  }
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Not JSON: reported below as it is.
  }
  if (!res.ok) {
    report(`${res.status}: ${typeof parsed.error === 'string' ? parsed.error : text.slice(0, 300)}`);
    process.exit(1);
  }
  return parsed;
}
