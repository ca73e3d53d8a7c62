import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A Linux network namespace of the test's own, with only its loopback up: whatever runs in it (`prefix` + a
 * command) reaches nothing outside and nothing outside reaches it, but through a Unix socket on the shared
 * filesystem. Needs root and iproute2's `ip netns`, which CI's machine has.
 */
export class NetworkNamespace {
  readonly name = `portcullis-${process.pid}-${randomBytes(3).toString('hex')}`;
  /** Put before a command to run it inside. */
  readonly prefix = ['ip', 'netns', 'exec', this.name];

  static create(): NetworkNamespace {
    const ns = new NetworkNamespace();
    ip(['netns', 'add', ns.name]);
    ip(['netns', 'exec', ns.name, 'ip', 'link', 'set', 'lo', 'up']);
    return ns;
  }

  remove(): void {
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`);
}

/** Why namespaces cannot be made here, or undefined when they can (a namespace is made and removed to find out). */
export function namespacesUnavailable(): string | undefined {
  try {
    NetworkNamespace.create().remove();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
