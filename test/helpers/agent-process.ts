import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cliPath } from './client.js';
import { waitFor } from './wait.js';

/**
 * `portcullis agent --config FILE` as a real process, with only the environment given (and PATH); `prefix` runs it
 * through another command (`ip netns exec <ns>`), which must exec it so that signals reach the agent itself.
 */
export class AgentProcess {
  readonly child: ChildProcess;
  out = '';
  constructor(config: string, env: Record<string, string>, prefix: string[] = []) {
    const command = [...prefix, process.execPath, cliPath, 'agent', '--config', config];
    this.child = spawn(command[0]!, command.slice(1), {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d));
    this.child.stderr!.on('data', (d: Buffer) => (this.out += d));
  }
  /** Waits for the `n`th time it says it is connected (it says so again after every reconnect). */
  async connected(n = 1): Promise<void> {
    await waitFor(() => this.out.split('is connected to').length > n, `the agent to connect: ${this.out}`, 30_000);
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await once(this.child, 'exit');
  }
}
