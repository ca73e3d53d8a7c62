import { Command } from 'commander';
import type { ExportOptions } from './export-action.js';

export function sessionsExportCommand(): Command {
  return new Command('export')
    .description('a session as JSON lines (schema portcullis.recording/v1, see docs/recording.md), for a SIEM or an archive')
    .argument('<session>', 'the session id, or a group id of modern exchanges (<session id>.<seq>: a `group` line, its sessions, its events)')
    .option('-c, --config <file>', "the gateway's config file (its store)")
    .option('--format <format>', 'jsonl (the only format)', 'jsonl')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .action(async (id: string, o: ExportOptions) => (await import('./export-action.js')).sessionsExportAction(id, o));
}
