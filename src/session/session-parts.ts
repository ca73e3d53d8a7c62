import type { Logger } from 'pino';
import type { ClientDelivery } from '../exchange/client-delivery.js';
import type { ExchangeTracer } from '../exchange/exchange-trace.js';
import type { FailureAnswers } from '../exchange/failure-answers.js';
import type { RequestRouter } from '../exchange/request-router.js';
import type { ServerForwarding } from '../exchange/server-forwarding.js';
import type { WriteAheadTap } from '../exchange/write-ahead-tap.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { SessionInfo } from '../pipeline/stage.js';
import type { SessionObserver } from './session-options.js';

/** The session's units both directions work with (ClientToServer, ServerToClient), and their say on the session. */
export interface SessionParts {
  /** The session, as stages, the recording and observers see it. */
  session: SessionInfo;
  log: Logger;
  observers: readonly SessionObserver[];
  tap: WriteAheadTap;
  pipeline: Pipeline;
  router: RequestRouter;
  toClient: ClientDelivery;
  toServer: ServerForwarding;
  failures: FailureAnswers;
  /** The session's exchange traces; undefined when tracing is off. */
  tracer: ExchangeTracer | undefined;
  /** Whether the session is closed (while a stage held a message, say): then nothing more goes either way. */
  isClosed(): boolean;
  close(reason: string): void;
}
