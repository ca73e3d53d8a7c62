/**
 * The import rules of src/ (README, "How it works"): no import cycle between files, none between folders (no two
 * folders import each other, directly or round a longer loop), and src/core/ imports nothing of ours. Checked by
 * test/architecture/import-cycles.test.ts, part of `npm test`; alone: `npm run check:imports`.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A file that imports itself round a loop: move what both need into a module of its own, or pass it in.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycle',
      comment:
        'Two folders that import each other: move the shared vocabulary down (src/core/, or the folder that owns it), ' +
        'pass an interface in, or move the misplaced module. src/gateway.ts and src/cli/ sit above everything.',
      severity: 'error',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-imports-nothing-of-ours',
      comment: 'src/core/ is the bottom of the graph: the vocabulary every part shares imports nothing of the project.',
      severity: 'error',
      from: { path: '(^|/)src/core/' },
      to: { path: '(^|/)src/', pathNot: '(^|/)src/core/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
  },
};
