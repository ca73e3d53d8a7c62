/**
 * The tunnel's wire format: binary WebSocket messages, each one frame with a 5-byte header (type, then the channel
 * it belongs to as a 32-bit number; channel 0 is the tunnel itself) and a body:
 *   control  JSON (hello, open, opened, close, …)
 *   data     one byte of flags (1: the last chunk of a message), then a chunk of a message's UTF-8 JSON text
 *   credit   a 32-bit count of bytes the receiver has taken in, which the sender may send again
 * A message's text travels as raw bytes, never re-encoded inside JSON, so a large tool result costs no escaping.
 */

export const frameTypes = { control: 1, data: 2, credit: 3 } as const;

export type Frame =
  | { type: 'control'; channel: number; body: Record<string, unknown> }
  | { type: 'data'; channel: number; final: boolean; chunk: Buffer }
  | { type: 'credit'; channel: number; bytes: number };

/** A frame that breaks the format: the tunnel is closed, as its peer is not speaking this protocol. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

function header(type: number, channel: number, extra: number): Buffer {
  const b = Buffer.allocUnsafe(5 + extra);
  b.writeUInt8(type, 0);
  b.writeUInt32BE(channel, 1);
  return b;
}

export function controlFrame(channel: number, body: Record<string, unknown>): Buffer {
  const json = Buffer.from(JSON.stringify(body));
  const h = header(frameTypes.control, channel, 0);
  return Buffer.concat([h, json]);
}

export function dataFrame(channel: number, final: boolean, chunk: Buffer): Buffer {
  const h = header(frameTypes.data, channel, 1);
  h.writeUInt8(final ? 1 : 0, 5);
  return Buffer.concat([h, chunk]);
}

export function creditFrame(channel: number, bytes: number): Buffer {
  const b = header(frameTypes.credit, channel, 4);
  b.writeUInt32BE(bytes, 5);
  return b;
}

export function decodeFrame(buf: Buffer): Frame {
  if (buf.length < 5) throw new FrameError(`a frame of ${buf.length} bytes is shorter than its header`);
  const type = buf.readUInt8(0);
  const channel = buf.readUInt32BE(1);
  switch (type) {
    case frameTypes.control: {
      let body: unknown;
      try {
        body = JSON.parse(buf.subarray(5).toString('utf8'));
      } catch {
        throw new FrameError('a control frame does not hold JSON');
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new FrameError('a control frame does not hold a JSON object');
      return { type: 'control', channel, body: body as Record<string, unknown> };
    }
    case frameTypes.data:
      if (buf.length < 6) throw new FrameError('a data frame has no flags');
      return { type: 'data', channel, final: (buf.readUInt8(5) & 1) === 1, chunk: buf.subarray(6) };
    case frameTypes.credit:
      if (buf.length !== 9) throw new FrameError('a credit frame is not 9 bytes');
      return { type: 'credit', channel, bytes: buf.readUInt32BE(5) };
    default:
      throw new FrameError(`unknown frame type ${type}`);
  }
}
