import { Command } from 'commander';
import { version } from '../version.js';
import { accessCommand } from './access/index.js';
import { reviewsCommand } from './reviews/index.js';
import { rulesCommand } from './rules/index.js';
import { pinsCommand } from './pins/index.js';
import { agentCommand } from './agent.js';
import { agentsCommand } from './agents/index.js';
import { configCheckCommand } from './config-check.js';
import { connectCommand } from './connect.js';
import { gatewayCommand } from './gateway.js';
import { keysCommand } from './keys/index.js';
import { loginCommand } from './login.js';
import { maskCommand } from './mask/index.js';
import { mcpConfigCommand } from './mcp-config.js';
import { sessionsCommand } from './sessions/index.js';
import { storeCommand } from './store/index.js';

/**
 * The `portcullis` command line. Each command's flags are declared in its own file, which imports nothing heavy; its
 * action (the library calls and the printing) lives in a sibling `*-action.ts` or `actions.ts`, imported when the
 * command runs: `--help` and every command load only what they use, not the gateway, the SDKs and both drivers.
 */
export function buildCli(): Command {
  const program = new Command('portcullis')
    .description('An access gateway for MCP servers: every message seen, recorded and governed.')
    .version(version)
    .showHelpAfterError();
  program.addCommand(gatewayCommand());
  program.addCommand(loginCommand());
  program.addCommand(connectCommand());
  program.addCommand(mcpConfigCommand());
  program.addCommand(sessionsCommand());
  program.addCommand(storeCommand());
  program.addCommand(accessCommand());
  program.addCommand(reviewsCommand());
  program.addCommand(rulesCommand());
  program.addCommand(pinsCommand());
  program.addCommand(agentCommand());
  program.addCommand(agentsCommand());
  program.addCommand(maskCommand());
  program.addCommand(keysCommand());
  const config = new Command('config').description('work with config files');
  config.addCommand(configCheckCommand());
  program.addCommand(config);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildCli().parseAsync(argv);
}
