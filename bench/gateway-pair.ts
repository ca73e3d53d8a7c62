import type { Proc } from './processes.js';

/**
 * A feature on vs off at 32 concurrent clients (encryption.ts, audit.ts): one repetition is two fresh gateways in
 * front of server-everything, started in an order that alternates with the repetition (so that neither always has
 * the first pick of the machine), measured together by the benchmark's closed loop, looked at, then stopped.
 */

export interface Target {
  name: string;
  url: string;
  token?: string | undefined;
}

/** The benchmark's closed-loop measurement (run.ts's `concurrent`). */
export type Concurrent = (targets: Target[]) => Promise<Map<string, { callsPerSec: number; warmMs: number }>>;

/** One side of the pair: its name in the measurement, and how its gateway starts. */
export interface PairSide {
  name: string;
  start: () => Promise<Proc>;
}

/**
 * Runs repetition `rep` of `off` against `on` (off starts first in even repetitions) and hands their calls/s, with the
 * gateways still running, to `look` (which checks what they did); the gateways are stopped after it, whatever happens.
 */
export async function alternatingPair<T>(
  rep: number,
  sides: { off: PairSide; on: PairSide },
  concurrent: Concurrent,
  look: (gateways: { off: Proc; on: Proc }, callsPerSec: { off: number; on: number }) => Promise<T>,
): Promise<T> {
  const gateways: Proc[] = [];
  try {
    const first = rep % 2 === 0 ? await sides.off.start() : await sides.on.start();
    const second = rep % 2 === 0 ? await sides.on.start() : await sides.off.start();
    const [off, on] = rep % 2 === 0 ? [first, second] : [second, first];
    gateways.push(first, second);
    const conc = await concurrent([
      { name: sides.off.name, url: `http://127.0.0.1:${off.port}/mcp/everything`, token: off.token },
      { name: sides.on.name, url: `http://127.0.0.1:${on.port}/mcp/everything`, token: on.token },
    ]);
    return await look({ off, on }, { off: conc.get(sides.off.name)!.callsPerSec, on: conc.get(sides.on.name)!.callsPerSec });
  } finally {
    await Promise.all(gateways.map((g) => g.stop()));
  }
}
