import { Command } from 'commander';
import { callGateway } from '../gateway-api.js';
import { type GatewayCommandOptions, withGateway } from '../gateway-command.js';
import { gatewayBaseUrl } from '../gateway-url.js';
import { printable, table } from '../table.js';
import { lineDiff } from './line-diff.js';

/** `portcullis pins …`: pinned tool definitions, and approving the changed ones (admins). */

interface Pin {
  connection: string;
  tool: string;
  status: string;
  digest: string | null;
  pendingDigest: string | null;
  pendingSince: string | null;
  pinnedAt: string;
  approvedAt: string | null;
  approvedBy: string | null;
  definition?: unknown;
  pendingDefinition?: unknown;
}

const short = (digest: string | null) => (digest === null ? '-' : digest.slice(0, 12));
const pinPath = (connection: string, tool: string) => `/api/pins/${encodeURIComponent(connection)}/${encodeURIComponent(tool)}`;

function listCommand(): Command {
  return withGateway(
    new Command('list').description("pinned tools, and those quarantined until an admin approves their new definition").option('--connection <name>', 'one connection only').option('--json', 'one JSON object per line'),
  ).action(async (opts: GatewayCommandOptions & { connection?: string; json?: boolean }) => {
    const base = gatewayBaseUrl('pins', opts.gateway, opts.config);
    const { pins } = (await callGateway('pins', base, 'GET', `/api/pins${opts.connection ? `?connection=${encodeURIComponent(opts.connection)}` : ''}`)) as { pins: Pin[] };
    if (opts.json) {
      for (const p of pins) process.stdout.write(`${JSON.stringify(p)}\n`);
      return;
    }
    if (pins.length === 0) {
      process.stdout.write('no pinned tools yet (a connection is pinned the first time its tools are listed)\n');
      return;
    }
    const rows = [['CONNECTION', 'TOOL', 'STATUS', 'PINNED', 'WAITING', 'APPROVED BY']];
    for (const p of pins) rows.push([p.connection, p.tool, p.status, short(p.digest), short(p.pendingDigest), p.approvedBy ?? (p.approvedAt ? '(first seen)' : '-')]);
    process.stdout.write(`${table(rows)}\n`);
  });
}

function diffCommand(): Command {
  return withGateway(new Command('diff').description("what changed in a quarantined tool's definition").argument('<connection>').argument('<tool>')).action(
    async (connection: string, tool: string, opts: GatewayCommandOptions) => {
      const base = gatewayBaseUrl('pins', opts.gateway, opts.config);
      const { pin } = (await callGateway('pins', base, 'GET', pinPath(connection, tool))) as { pin: Pin };
      if (pin.pendingDigest === null) {
        process.stdout.write(`tool '${tool}' on '${connection}' is ${pin.status} (${short(pin.digest)}); no new definition waits for approval\n`);
        return;
      }
      const before = pin.definition === null ? '' : JSON.stringify(pin.definition, null, 2);
      const lines = [
        `--- pinned   ${pin.digest ?? '(none: a tool that appeared after the connection was pinned)'}`,
        `+++ offered  ${pin.pendingDigest} (since ${pin.pendingSince})`,
        ...lineDiff(before, JSON.stringify(pin.pendingDefinition, null, 2)),
        '',
        `approve with: portcullis pins approve ${connection} ${tool} --digest ${pin.pendingDigest}`,
      ];
      process.stdout.write(`${printable(lines.join('\n'))}\n`);
    },
  );
}

function approveCommand(): Command {
  return withGateway(
    new Command('approve')
      .description("trust a quarantined tool's new definition (admins): it is pinned and the tool is offered again")
      .argument('<connection>')
      .argument('<tool>')
      .option('--digest <sha256>', 'the definition you reviewed (from pins diff): refused if the server offers another by now'),
  ).action(async (connection: string, tool: string, opts: GatewayCommandOptions & { digest?: string }) => {
    const base = gatewayBaseUrl('pins', opts.gateway, opts.config);
    const { pin } = (await callGateway('pins', base, 'POST', `${pinPath(connection, tool)}/approve`, opts.digest ? { digest: opts.digest } : {})) as { pin: Pin };
    process.stdout.write(`tool '${pin.tool}' on '${pin.connection}' pinned at ${short(pin.digest)}, approved by ${pin.approvedBy}\n`);
  });
}

export function pinsCommand(): Command {
  const pins = new Command('pins').description('tool pinning: list pinned tools, diff and approve changed definitions');
  pins.addCommand(listCommand());
  pins.addCommand(diffCommand());
  pins.addCommand(approveCommand());
  return pins;
}
