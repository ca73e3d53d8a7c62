import { Command } from 'commander';

export function configCheckCommand(): Command {
  return new Command('check')
    .description('validate a config file without starting anything; exit code 1 when it is invalid')
    .argument('<file>', 'the config file (YAML)')
    .action(async (file: string) => (await import('./config-check-action.js')).configCheckAction(file));
}
