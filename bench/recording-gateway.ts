/**
 * The encryption benchmark's gateways, both started the same way (`Gateway.start` on the config file, as
 * `portcullis gateway --config` does, through one entry so that the entry point is no difference between them):
 * `encrypted` gives the recorder a keyring with a local KEK from PORTCULLIS_BENCH_KEK (32 bytes, base64), `plain`
 * none. TODO(E1): once `recording.encryption` is in the config schema, the benchmark can write it in the config.
 */
import { loadConfigFile } from '../src/config/load.js';
import { Keyring } from '../src/encryption/keyring.js';
import { localKek, localKeyBytes } from '../src/encryption/keks/local.js';
import { Gateway } from '../src/gateway.js';

const config = loadConfigFile(process.argv[2]!);
const encrypted = process.argv[3] === 'encrypted';
const kek = encrypted ? localKek('bench', localKeyBytes(process.env.PORTCULLIS_BENCH_KEK ?? '')) : undefined;
const gateway = await Gateway.start(config, kek === undefined ? {} : { keyring: new Keyring([kek], kek) });
process.stdout.write(`Portcullis is running at ${gateway.url} (recordings ${encrypted ? 'encrypted' : 'plain'}, for the benchmark)\n`);
process.once('SIGTERM', () => void gateway.stop().then(() => process.exit(0)));
