import { type SessionVerification, verifyLedger, verifySession } from '../../recording/verify.js';
import { parseGroupId } from '../../recording/exchange-groups.js';
import { findGroup, unreadableGroup, verifyGroup } from '../../recording/session-groups.js';
import { shown } from '../../recording/transcript.js';
import type { Store } from '../../store/store.js';
import { storeForCommand, trustedKeysForCommand } from '../store-for-command.js';
import { failMissingGroup } from './missing-group.js';

export interface VerifyFlags {
  config?: string;
  all?: boolean;
  json?: boolean;
  trustStoreKeys?: boolean;
  exchanges?: boolean;
}

function report(r: SessionVerification, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  const label = r.status === 'failed' ? 'FAILED' : r.status;
  const x = r.exchanges;
  const exchanges = x === undefined ? '' : `, ${x.total} exchange${x.total === 1 ? '' : 's'} (${x.complete} complete)`;
  process.stdout.write(`${r.sessionId}  ${label.padEnd(8)}  ${r.events} events${exchanges}${r.notes.length ? `; ${r.notes.join('; ')}` : ''}\n`);
  for (const p of r.problems) process.stdout.write(`    ${p.seq === undefined ? '' : `event ${p.seq}: `}${p.message}\n`);
  for (const e of x?.all ?? []) {
    const about = [e.protocolVersion ? `@${e.protocolVersion}` : '', e.traceId ? `trace ${e.traceId}` : '', e.group && !e.traceId ? `group ${e.group}` : '']
      .filter((t) => t !== '')
      .join(' ');
    process.stdout.write(
      `    #${shown(JSON.stringify(e.id))} ${shown(e.method)} (event ${e.seq}): ${e.outcome === 'unanswered' ? 'INCOMPLETE, no answer recorded' : e.outcome}` +
        `${e.verdicts > 0 ? `, ${e.verdicts} verdict${e.verdicts === 1 ? '' : 's'}` : ''}${about ? `  ${about}` : ''}\n`,
    );
  }
}

/** Every session id in the store, newest first, a page at a time. */
async function* allSessionIds(store: Store): AsyncGenerator<string> {
  let before: { openedAtUs: number; id: string } | undefined;
  for (;;) {
    const page = await store.listSessions({ limit: 500, ...(before ? { before } : {}) });
    for (const s of page) yield s.id;
    if (page.length < 500) return;
    const last = page.at(-1)!;
    before = { openedAtUs: last.openedAtUs, id: last.id };
  }
}

/** `portcullis sessions verify`: one session's chain and seal, or every session's and every ledger; exit code 1 on a failure. */
export async function sessionsVerifyAction(id: string | undefined, o: VerifyFlags): Promise<void> {
  if ((id === undefined) === !o.all) {
    process.stderr.write('portcullis: verify takes a session id, or --all\n');
    process.exit(2);
  }
  const { config, store } = await storeForCommand(o.config);
  try {
    const trusted = await trustedKeysForCommand(config, store, o.trustStoreKeys ?? false);
    if (trusted.size === 0) {
      process.stderr.write(
        `portcullis: no trusted key: neither ${config.dataDir}/signing-key.pem nor recording.signingKey nor recording.trustedKeys; seals cannot be checked (use the gateway's --config, or --trust-store-keys)\n`,
      );
    }
    const json = o.json ?? false;
    if (id !== undefined && parseGroupId(id) !== undefined) {
      const found = await findGroup(store, id, config.sessions.viewIdleGapMs);
      if (found === undefined) {
        // Verifying needs no key: a group that cannot be told apart without its session's payloads is covered by
        // verifying that whole session.
        const unreadable = await unreadableGroup(store, id);
        if (unreadable !== undefined) {
          if (!json)
            process.stdout.write(
              `group ${id}: its session's payloads cannot be read here (${unreadable.unreadable}), so the group cannot be told apart; its whole session ${unreadable.id} is verified, which covers it\n`,
            );
          const r = await verifySession(store, unreadable.id, trusted);
          report(r, json);
          if (r.status === 'failed') process.exitCode = 1;
          return;
        }
        failMissingGroup(store, id, 'verified');
        return;
      }
      const g = await verifyGroup(store, found, trusted);
      if (!json)
        process.stdout.write(`group ${g.group}  ${g.status === 'failed' ? 'FAILED' : g.status}: ${g.sessions.length} session(s), each verified whole\n`);
      for (const r of g.sessions) report(r, json);
      if (g.status === 'failed') process.exitCode = 1;
      return;
    }
    if (id !== undefined) {
      const r = await verifySession(store, id, trusted, o.exchanges ?? false, config.sessions.viewIdleGapMs);
      report(r, json);
      if (r.status === 'failed') process.exitCode = 1;
      return;
    }
    const counts = { verified: 0, erased: 0, unsealed: 0, deleted: 0, failed: 0 };
    for await (const sessionId of allSessionIds(store)) {
      const r = await verifySession(store, sessionId, trusted);
      counts[r.status]++;
      // Erased sessions are listed (who erased them, when, why) as deleted ones are.
      if (r.status !== 'verified' || json) report(r, json);
    }
    let ledgerProblems = 0;
    const instances = await store.ledgerInstances();
    for (const instance of instances) {
      const l = await verifyLedger(store, instance);
      ledgerProblems += l.problems.length;
      if (json) process.stdout.write(`${JSON.stringify({ ledger: l })}\n`);
      else for (const p of l.problems) process.stdout.write(`ledger ${instance}: ${p.message}\n`);
    }
    if (!json) {
      process.stdout.write(
        `${counts.verified + counts.erased + counts.unsealed + counts.failed} sessions: ${counts.verified} verified, ${counts.erased ? `${counts.erased} erased (verified, unreadable for good), ` : ''}${counts.unsealed} not sealed yet (live), ${counts.failed} FAILED; ` +
          `${instances.length} ledger${instances.length === 1 ? '' : 's'}: ${ledgerProblems === 0 ? 'intact' : `${ledgerProblems} problems`}\n`,
      );
    }
    if (counts.failed > 0 || ledgerProblems > 0) process.exitCode = 1;
  } finally {
    await store.close();
  }
}
