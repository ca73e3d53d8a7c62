import { Command } from 'commander';

/** `portcullis agent --config agent.yaml`: runs the agent until SIGINT or SIGTERM. */
export function agentCommand(): Command {
  return new Command('agent')
    .description("run an agent inside the servers' network: it dials out to the gateway and serves its connections there")
    .requiredOption('-c, --config <file>', "the agent's config file (YAML: gateway, name, token, connections)")
    .action(async (o: { config: string }) => (await import('./agent-action.js')).agentAction(o));
}
