import type { SinkKind } from '../sink.js';
import { fileSinkKind } from './file.js';
import { httpSinkKind } from './http.js';
import { syslogSinkKind } from './syslog.js';

/** Every kind of audit sink, one line each: a sink's config names exactly one of their keys. */
export const sinkKinds: readonly SinkKind<unknown>[] = [httpSinkKind, fileSinkKind, syslogSinkKind];
