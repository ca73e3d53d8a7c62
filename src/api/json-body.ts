import type { IncomingMessage } from 'node:http';
import { BodyTooLargeError, readBody } from '../edge/body.js';
import { HttpError } from '../core/http-error.js';

/** A request's JSON object body (at most 64 KiB; empty means {}), or an HttpError saying what is wrong with it. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readBody(req, 64 * 1024);
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw new HttpError(413, 'the body is larger than 64 KiB');
    throw new HttpError(400, 'the body could not be read');
  }
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

/** A string field of a body, when present. */
export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new HttpError(400, `${key} must be a string`);
  return v;
}
