import type { Direction } from './direction.js';

/** A verdict a stage took that changed something, for observers (the recorder, metrics, logs). */
export interface VerdictEvent {
  stage: string;
  /** `pass`: let through unchanged, reported because the stage said why (a rule that allowed it, an approved review). */
  action: 'pass' | 'rewrite' | 'answer' | 'hold';
  reason?: string;
  direction: Direction;
  /** The JSON-RPC id of the message (a RequestId: string or number). */
  messageId?: string | number;
  method?: string;
  /** A rewrite that removed sensitive content (see the pipeline's Verdict). */
  sensitive?: boolean;
  /** What the stage reports about it (masking: the redactions, by detector, JSON path and count). */
  details?: Record<string, unknown>;
}
