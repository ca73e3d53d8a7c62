import { Agent, credentialsOf } from '../agent/agent.js';
import { type AgentConfig, loadAgentConfig } from '../agent/config.js';
import { ConfigError } from '../config/load.js';
import { createLogger, logProcessWarnings } from '../log.js';
import { CredentialScrubber } from '../scrub/credential-scrubber.js';

/** `portcullis agent --config agent.yaml`: runs the agent until SIGINT or SIGTERM. */
export async function agentAction(o: { config: string }): Promise<void> {
  let config: AgentConfig;
  try {
    config = loadAgentConfig(o.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`portcullis: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, process.stderr, new CredentialScrubber(credentialsOf(config)), config.logFormat);
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
}
