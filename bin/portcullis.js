#!/usr/bin/env node
import { main } from '../dist/src/cli/index.js';

// Output piped into `head` or a closed pager is not an error worth a stack trace.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv).catch((err) => {
  process.stderr.write(`portcullis: ${err?.stack ?? err}\n`);
  process.exit(1);
});
