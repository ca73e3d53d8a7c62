import type { ExchangeTracer } from '../exchange/exchange-trace.js';
import type { MaskingConfig } from '../masking/config.js';
import { recordingRedactor } from '../masking/recording-redactor.js';
import type { JsonRpcRequest } from '../protocol/jsonrpc.js';
import type { TelemetrySettings } from './config.js';
import { startTracer, type TracerHandle } from './sdk.js';
import { SessionTracer } from './session-tracer.js';

/** The longest tool arguments attribute, in characters (telemetry.recordArguments). */
const maxArgumentsChars = 4096;

/** Tracing while the gateway runs: a tracer for each new session, and the exporter's flush at the end. */
export class Tracing {
  readonly #arguments = new Map<string, (request: JsonRpcRequest) => string>();

  private constructor(
    private readonly settings: TelemetrySettings,
    private readonly handle: TracerHandle,
  ) {}

  /** `failed` hears of each export the collector did not take (its spans are dropped: traces are not the recording). */
  static async start(settings: TelemetrySettings, failed: (err: Error | undefined) => void, exportDelayMs?: number): Promise<Tracing> {
    return new Tracing(settings, await startTracer(settings, failed, exportDelayMs));
  }

  forSession(connection: string, masking: MaskingConfig, era: 'modern' | 'legacy'): ExchangeTracer {
    return new SessionTracer({ tracer: this.handle.tracer, era, arguments: this.#argumentsOf(connection, masking) });
  }

  flush(): Promise<void> {
    return this.handle.flush();
  }

  shutdown(): Promise<void> {
    return this.handle.shutdown();
  }

  /** A tool call's arguments as the connection's masking leaves them (the recording's client-argument masking), or undefined when not recorded. */
  #argumentsOf(connection: string, masking: MaskingConfig): ((request: JsonRpcRequest) => string) | undefined {
    if (!this.settings.recordArguments) return undefined;
    let masked = this.#arguments.get(connection);
    if (masked === undefined) {
      const redact = recordingRedactor(masking);
      masked = (request) => {
        const result = redact(JSON.stringify(request));
        const params = result === undefined ? request.params : (JSON.parse(result.text) as { params?: Record<string, unknown> }).params;
        const shown = params === undefined ? { withheld: 'the arguments could not be masked, so they are not shown' } : (params.arguments ?? {});
        return JSON.stringify(shown).slice(0, maxArgumentsChars);
      };
      this.#arguments.set(connection, masked);
    }
    return masked;
  }
}
