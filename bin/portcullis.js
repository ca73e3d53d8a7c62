#!/usr/bin/env node
import { main } from '../dist/src/cli/index.js';

main(process.argv).catch((err) => {
  process.stderr.write(`portcullis: ${err?.stack ?? err}\n`);
  process.exit(1);
});
