import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { demoServerEntry } from '../../src/config/load.js';
import { freePort } from './ports.js';

export interface RunningServer {
  /** The MCP endpoint: .../mcp for Streamable HTTP, .../sse for legacy SSE. */
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `@modelcontextprotocol/server-everything` over HTTP (`streamableHttp` or `sse`) on a free loopback port. */
export async function startEverything(mode: 'streamableHttp' | 'sse'): Promise<RunningServer> {
  const port = await freePort();
  const child = spawn(process.execPath, [demoServerEntry(), mode], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server-everything ${mode} did not start: ${stderr}`)), 15_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/listening on port|running on port/i.test(stderr)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server-everything ${mode} exited with ${code}: ${stderr}`));
    });
  });
  child.stderr!.resume();
  return {
    url: `http://127.0.0.1:${port}/${mode === 'sse' ? 'sse' : 'mcp'}`,
    port,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await once(child, 'exit');
      clearTimeout(timer);
    },
  };
}

/** The stdio connection block that runs server-everything as a child of the gateway. */
export function everythingStdio(): { command: string; args: string[] } {
  return { command: process.execPath, args: [demoServerEntry(), 'stdio'] };
}
