import { Command } from 'commander';

/**
 * `portcullis agents create|list|revoke`: the agents a gateway accepts tunnels from. Run where the gateway's config
 * and store are (an admin's job): a token is printed once, at creation, and only its SHA-256 is stored.
 */

function createCommand(): Command {
  return new Command('create')
    .description("create an agent and print its token (shown once; put it in the agent's config as a reference)")
    .argument('<name>', 'the agent name, as connections name it (agent: <name>)')
    .option('-c, --config <file>', "the gateway's config file (its store)")
    .option('--rotate', 'the agent exists: give it a new token (the old one stops working) and lift a revocation')
    .action(async (name: string, o: { config?: string; rotate?: boolean }) => (await import('./actions.js')).agentsCreateAction(name, o));
}

function listCommand(): Command {
  return new Command('list')
    .description('the agents, and whether each has a tunnel to the running gateway')
    .option('-c, --config <file>', "the gateway's config file (its store, and its address)")
    .option('-g, --gateway <url>', 'the running gateway to ask for live status (default: from --config)')
    .option('--json', 'one JSON object per line')
    .action(async (o: { config?: string; gateway?: string; json?: boolean }) => (await import('./actions.js')).agentsListAction(o));
}

function revokeCommand(): Command {
  return new Command('revoke')
    .description("revoke an agent's token: it can no longer open a tunnel, and the gateway closes an open one at its next heartbeat")
    .argument('<name>')
    .option('-c, --config <file>', "the gateway's config file (its store)")
    .action(async (name: string, o: { config?: string }) => (await import('./actions.js')).agentsRevokeAction(name, o));
}

export function agentsCommand(): Command {
  const agents = new Command('agents').description('agents that serve connections from inside their network: create, list, revoke');
  agents.addCommand(createCommand());
  agents.addCommand(listCommand());
  agents.addCommand(revokeCommand());
  return agents;
}
