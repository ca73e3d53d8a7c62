import { readFileSync } from 'node:fs';
import { MaskingRefusedError, type Redaction } from '../../masking/engine.js';
import { maskerFor } from '../../masking/policy.js';
import { configForCommand } from '../load-config.js';

export interface MaskTestOptions {
  config?: string;
  connection?: string;
  json?: boolean;
  quiet?: boolean;
}

/** `portcullis mask test FILE`: the configured masking over a file; the masked result on stdout, what it found on stderr. */
export function maskTestAction(file: string, opts: MaskTestOptions): void {
  const config = configForCommand(opts.config);
  let masking = config.masking;
  if (opts.connection !== undefined) {
    const connection = config.connections.get(opts.connection);
    if (connection === undefined) {
      process.stderr.write(
        `portcullis mask test: there is no connection named ${JSON.stringify(opts.connection)}; the config has: ${[...config.connections.keys()].join(', ')}\n`,
      );
      process.exit(2);
    }
    masking = connection.masking;
  }
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    process.stderr.write(`portcullis mask test: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    process.exit(2);
  }
  const masker = maskerFor({ ...masking, enabled: true });
  let output: string;
  let redactions: Redaction[];
  try {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (parsed !== undefined) {
      const masked = masker.maskValue(parsed);
      redactions = masked.redactions;
      output = JSON.stringify(masked.value, null, 2);
    } else {
      const masked = masker.maskString(text);
      redactions = masked === undefined ? [] : [...masked.counts].map(([detector, count]) => ({ detector, path: '$', count }));
      output = masked?.text ?? text;
    }
  } catch (err) {
    if (!(err instanceof MaskingRefusedError)) throw err;
    process.stderr.write(`portcullis mask test: ${err.message}\n`);
    process.exit(1);
  }
  if (opts.json) {
    for (const r of redactions) process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  if (!opts.quiet) process.stdout.write(`${output}${output.endsWith('\n') ? '' : '\n'}`);
  const total = redactions.reduce((n, r) => n + r.count, 0);
  process.stderr.write(total === 0 ? 'nothing found to mask\n' : `${total} redaction${total === 1 ? '' : 's'}:\n`);
  for (const r of redactions) process.stderr.write(`  ${r.detector.padEnd(28)} ${String(r.count).padStart(4)}  ${r.path}\n`);
}
