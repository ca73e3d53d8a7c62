/**
 * The benchmark's "authentication off" baseline: a gateway started exactly as `portcullis gateway --config`
 * starts one, except that token authentication is replaced by one fixed identity. It exists only here; the
 * config file and the CLI have no way to turn authentication off.
 */
import { loadConfigFile } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';

const config = loadConfigFile(process.argv[2]!);
const bench = { identity: { subject: 'bench', issuer: 'urn:bench', groups: ['bench'] } };
const gateway = await Gateway.start(config, { authenticator: { authenticate: async () => bench, authenticateGateway: async () => bench } });
process.stdout.write(`Portcullis is running at ${gateway.url} (authentication off, for the benchmark)\n`);
process.once('SIGTERM', () => void gateway.stop().then(() => process.exit(0)));
