import type { Logger } from 'pino';
import type { Direction } from '../core/direction.js';
import type { Identity } from '../core/identity.js';
import type { VerdictEvent } from '../core/verdict-event.js';
import type { ExchangeTracer } from '../exchange/exchange-trace.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { MessageContext, SessionInfo, VirtualOrigin } from '../pipeline/stage.js';
import type { JsonRpcMessage } from '../protocol/jsonrpc.js';
import type { SessionRecording } from '../recording/session-recording.js';
import type { Upstream } from '../upstream/upstream.js';
import type { FlowLimits } from './client-flow.js';

/** Sees everything a session does: metrics, debug logs, tests. The recording is not an observer: it is waited on. */
export interface SessionObserver {
  opened?(session: SessionInfo): void;
  /** A message crossed a boundary: `received` from its sender, `delivered` to its receiver (after the pipeline). */
  message?(session: SessionInfo, direction: Direction, boundary: 'received' | 'delivered', message: JsonRpcMessage): void;
  verdict?(session: SessionInfo, event: VerdictEvent): void;
  /** The session has ended: its recording is sealed and its client told; its server may still be exiting. */
  closed?(session: SessionInfo, reason: string): void;
  /** After `closed`: the upstream link is gone too (a stdio server has exited), so what it held under the limits is free. */
  exited?(session: SessionInfo): void;
}

export interface SessionOptions {
  id: string;
  connection: string;
  identity: Identity;
  upstream: Upstream;
  /** Builds the session's pipeline; handed the verdict sink so every decision is seen and recorded. */
  pipeline: (onVerdict: (event: VerdictEvent, ctx: MessageContext) => void) => Pipeline;
  log: Logger;
  observers?: readonly SessionObserver[];
  /** The session's recording; absent when recording is off. */
  recording?: SessionRecording;
  /** How often a held request whose client asked for progress is told it still waits (reviews.progressInterval). */
  holdProgressMs?: number;
  /** Backpressure toward a slow client (limits.clientBacklog, limits.slowClientTimeout); absent: unbounded. */
  flow?: FlowLimits;
  /** A member session of a virtual server: which one, for its stages. */
  virtual?: VirtualOrigin;
  /** Masks a cut-off fragment of a server message for the recording; absent when masking does not apply. */
  maskFragment?: (text: string, session: SessionInfo) => string;
  /** Traces its exchanges (src/telemetry); absent when tracing is off. */
  tracer?: ExchangeTracer;
}
