import { spawn } from 'node:child_process';

/**
 * The floor of one more process between the gateway and a stdio server: it starts the server given on its command
 * line and pipes bytes both ways, parsing nothing, scrubbing nothing, framing nothing. The agent adds the same one
 * process (and a socket where this has a pipe), so the agent's ratio next to this one's shows what the agent's own
 * work costs apart from the extra hop. Run as a stdio server: `node null-relay.js <command> [args…]`.
 */
const [command, ...args] = process.argv.slice(2);
if (command === undefined) throw new Error('usage: node null-relay.js <command> [args…]');
const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
process.stdin.pipe(child.stdin);
child.stdout.pipe(process.stdout);
child.on('exit', (code) => process.exit(code ?? 1));
process.stdin.on('end', () => child.stdin.end());
