import { Command } from 'commander';
import type { RulesTestOptions } from './test-action.js';

/** `portcullis rules test`: the configured guardrail rules against a sample request, and which one decides and why. */
export function rulesCommand(): Command {
  const rules = new Command('rules').description('guardrail rules: try them against a sample request');
  rules.addCommand(
    new Command('test')
      .description('evaluate the configured rules against a sample request; prints each rule tried, the one that decides and why')
      .option('-c, --config <file>', "the gateway's config file (without it, the embedded defaults)")
      .option('--connection <name>', 'the connection the request is on (default: the first); a virtual server implies --virtual')
      .option(
        '--virtual <server>',
        "the request comes through this virtual server: --tool and --prompt name the tool or prompt there (e.g. files__read_file), or the member's own with --connection <member>",
      )
      .option('--request <file>', 'a JSON-RPC request to test, from a file (- for standard input)')
      .option('--tool <name>', 'a tools/call of this tool')
      .option('--arguments <json>', "the tool's or prompt's arguments, as a JSON object")
      .option('--prompt <name>', 'a prompts/get of this prompt')
      .option('--uri <uri>', 'a resources/read of this resource')
      .option('--method <method>', 'any other method', 'tools/list')
      .option('--annotations <json>', "the tool's annotations as its server declares them, as a JSON object")
      .option('--user <subject>', 'the caller', 'tester')
      .option('--email <email>', "the caller's e-mail")
      .option('--groups <list>', "the caller's groups, comma-separated", '')
      .option('--json', 'print the result as JSON')
      .action(async (o: RulesTestOptions) => (await import('./test-action.js')).rulesTestAction(o)),
  );
  return rules;
}
