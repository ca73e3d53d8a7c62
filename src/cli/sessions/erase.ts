import { Command } from 'commander';
import { type GatewayCommandOptions, withGateway } from '../gateway-command.js';
import type { EraseFlags } from './erase-action.js';

export function sessionsEraseCommand(): Command {
  return withGateway(
    new Command('erase')
      .description(
        'crypto-shreds recordings (admins): destroys their data keys, so their payloads can never be read again while verify still passes; by session id, or every session and access request of a subject',
      )
      .argument('[sessions...]', 'the session ids (or --subject)')
      .option('--subject <subject>', "every recording of this subject (the token's sub)")
      .option('--issuer <url>', "with --subject: only the subject of this issuer (the token's iss)")
      .requiredOption('--reason <text>', 'why: kept in the ledger with who erased and when')
      .option('--json', 'the answer as JSON'),
  ).action(async (sessions: string[], o: GatewayCommandOptions & EraseFlags) => (await import('./erase-action.js')).sessionsEraseAction(sessions, o));
}
