/**
 * The benchmark's encrypted-recording gateway: started exactly as `portcullis gateway --config` starts one, with a
 * local KEK from PORTCULLIS_BENCH_KEK (32 bytes, base64) given to the recorder directly. TODO(E1): once
 * `recording.encryption` is in the config schema, the benchmark can write it in the config instead and drop this.
 */
import { loadConfigFile } from '../src/config/load.js';
import { Keyring } from '../src/encryption/keyring.js';
import { localKek, localKeyBytes } from '../src/encryption/keks/local.js';
import { Gateway } from '../src/gateway.js';

const kek = localKek('bench', localKeyBytes(process.env.PORTCULLIS_BENCH_KEK ?? ''));
const config = loadConfigFile(process.argv[2]!);
const gateway = await Gateway.start(config, { keyring: new Keyring([kek], kek) });
process.stdout.write(`Portcullis is running at ${gateway.url} (recordings encrypted, for the benchmark)\n`);
process.once('SIGTERM', () => void gateway.stop().then(() => process.exit(0)));
