import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const readme = `# The quick start's demo folder

The embedded defaults (\`npm start\`) serve this folder through @modelcontextprotocol/server-filesystem as the
connection \`files\`, reading only (its tools are limited to read_*, list_*, search_files, get_file_info and
directory_tree), and through the virtual server \`toolbox\` beside \`everything\`: there its tools are named
\`files__read_text_file\`, \`files__list_directory\`, and so on.

Put files here to read them from an MCP client. Portcullis made this folder at its first start and leaves it alone
afterwards; delete it whenever you like (it is made again).
`;

/**
 * The folder the quick start's `files` connection serves: the filesystem server refuses to start without it, so it is
 * made (with a README to read) before the gateway starts its processes. What is already there is left as it is.
 */
export function ensureDemoFiles(folder: string): void {
  if (existsSync(folder)) return;
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'README.md'), readme);
}
