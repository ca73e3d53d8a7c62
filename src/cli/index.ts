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
import { loginCommand } from './login.js';
import { maskCommand } from './mask/index.js';
import { mcpConfigCommand } from './mcp-config.js';
import { sessionsCommand } from './sessions/index.js';

/** The `portcullis` command line: one file per command, each parsing flags and calling the library. */
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
  program.addCommand(accessCommand());
  program.addCommand(reviewsCommand());
  program.addCommand(rulesCommand());
  program.addCommand(pinsCommand());
  program.addCommand(agentCommand());
  program.addCommand(agentsCommand());
  program.addCommand(maskCommand());
  const config = new Command('config').description('work with config files');
  config.addCommand(configCheckCommand());
  program.addCommand(config);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildCli().parseAsync(argv);
}
