import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cliPath } from './client.js';

/** `portcullis gateway --config FILE` as a real process, for tests that kill it. */
export class GatewayProcess {
  readonly child: ChildProcess;
  #out = '';
  constructor(config: string) {
    this.child = spawn(process.execPath, [cliPath, 'gateway', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.#out += d));
    this.child.stderr!.on('data', (d: Buffer) => (this.#out += d));
  }
  /** What it printed so far, stdout and stderr interleaved. */
  get output(): string {
    return this.#out;
  }
  async ready(): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!this.#out.includes('Portcullis is running')) {
      if (this.child.exitCode !== null) throw new Error(`the gateway exited: ${this.#out}`);
      if (Date.now() > deadline) throw new Error(`the gateway did not start: ${this.#out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  async stop(signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await once(this.child, 'exit');
  }
}
