import { Command } from 'commander';
import type { MaskTestOptions } from './test-action.js';

/** `portcullis mask test FILE`: the configured masking over a file, to try rules before deploying them. */
function maskTestCommand(): Command {
  return new Command('test')
    .description('run the configured masking over a file (JSON, or any text) and print what it found and the masked result')
    .argument('<file>', 'the file to mask; - for standard input')
    .option('-c, --config <file>', "the gateway's config file (its masking settings; without it, the defaults)")
    .option('--connection <name>', "use this connection's masking (its overrides of the gateway-wide settings)")
    .option('--json', 'print the findings as JSON lines instead of a summary')
    .option('-q, --quiet', 'print only the findings, not the masked content')
    .action(async (file: string, opts: MaskTestOptions) => (await import('./test-action.js')).maskTestAction(file, opts));
}

export function maskCommand(): Command {
  const mask = new Command('mask').description('inline masking: try the configured rules');
  mask.addCommand(maskTestCommand());
  return mask;
}
