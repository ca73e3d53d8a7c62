import { Command } from 'commander';
import type { ReplayFlags } from './replay-action.js';

export function sessionsReplayCommand(): Command {
  return new Command('replay')
    .description('plays a session back in the terminal with its original timing; --follow watches a live one')
    .argument('<session>', 'the session id')
    .option('-c, --config <file>', "the gateway's config file (its store)")
    .option('-s, --speed <factor>', 'playback speed: 2 is twice as fast', '1')
    .option('--max-pause <seconds>', 'cut longer pauses to this (marked in the output)', '10')
    .option('-f, --follow', 'keep following a live session until it ends')
    .action(async (id: string, o: ReplayFlags) => (await import('./replay-action.js')).sessionsReplayAction(id, o));
}
