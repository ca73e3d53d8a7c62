import { Command } from 'commander';
import { Agent, credentialsOf } from '../agent/agent.js';
import { loadAgentConfig } from '../agent/config.js';
import { ConfigError } from '../config/load.js';
import { createLogger, logProcessWarnings } from '../log.js';
import { CredentialScrubber } from '../scrub/credential-scrubber.js';

/** `portcullis agent --config agent.yaml`: runs the agent until SIGINT or SIGTERM. */
export function agentCommand(): Command {
  return new Command('agent')
    .description("run an agent inside the servers' network: it dials out to the gateway and serves its connections there")
    .requiredOption('-c, --config <file>', "the agent's config file (YAML: gateway, name, token, connections)")
    .action(async (o: { config: string }) => {
      let config;
      try {
        config = loadAgentConfig(o.config);
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`portcullis: ${err.message}\n`);
          process.exit(2);
        }
        throw err;
      }
      const log = createLogger(config.logLevel, process.stderr, new CredentialScrubber(credentialsOf(config)));
      logProcessWarnings(log);
      const agent = new Agent(config, log);
      agent.onconnected = (url, instance) =>
        process.stdout.write(
          `Portcullis agent '${config.name}' is connected to ${url}${instance === undefined ? '' : ` (replica ${instance})`}, serving: ${[...config.connections.keys()].join(', ')}\n`,
        );
      agent.start();
      const stop = () => void agent.stop().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
