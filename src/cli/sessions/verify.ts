import { Command } from 'commander';
import type { VerifyFlags } from './verify-action.js';

export function sessionsVerifyCommand(): Command {
  return new Command('verify')
    .description("checks recordings against tampering: each session's hash chain, its signed seal, and the gateways' ledgers; exit code 1 on any failure")
    .argument('[session]', 'the session id, or a group id of modern exchanges (each of its sessions, whole), or --all')
    .option('-c, --config <file>', "the gateway's config file (its store and keys)")
    .option('--all', 'every session in the store, and every ledger')
    .option('--json', 'one JSON result per line')
    .option('--exchanges', "with a session id: each of its client's requests, with its verdicts and how it ended")
    .option('--trust-store-keys', 'also trust every public key the store lists (weaker: whoever can write the store can add one)')
    .action(async (id: string | undefined, o: VerifyFlags) => (await import('./verify-action.js')).sessionsVerifyAction(id, o));
}
