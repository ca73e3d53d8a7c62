import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { attestSession } from '../../recording/attest.js';
import { exportGroup, exportSession } from '../../recording/export.js';
import { parseGroupId } from '../../recording/exchange-groups.js';
import { findGroup, unreadableGroup } from '../../recording/session-groups.js';
import { failUnreadable, storeForCommand } from '../store-for-command.js';
import { failMissingGroup } from './missing-group.js';

export interface ExportOptions {
  config?: string;
  format: string;
  output?: string;
}

/** `portcullis sessions export`: a session's recording as JSON lines, on stdout or into a file. */
export async function sessionsExportAction(id: string, o: ExportOptions): Promise<void> {
  if (o.format !== 'jsonl') {
    process.stderr.write(`portcullis: --format expects jsonl, found ${JSON.stringify(o.format)}\n`);
    process.exit(2);
  }
  const { config, store } = await storeForCommand(o.config);
  let out: WriteStream | NodeJS.WriteStream = process.stdout;
  try {
    if (parseGroupId(id) !== undefined) {
      const found = await findGroup(store, id, config.sessions.viewIdleGapMs);
      if (found === undefined) {
        failMissingGroup(store, id, 'exported', await unreadableGroup(store, id));
        return;
      }
      if (o.output) out = createWriteStream(o.output, { mode: 0o600 });
      for (const line of exportGroup(found, config.sessions.viewIdleGapMs)) {
        if (!out.write(`${line}\n`)) await once(out, 'drain');
      }
      return;
    }
    const session = await attestSession(store, await store.getSession(id));
    if (session === undefined) {
      process.stderr.write(`portcullis: no session ${JSON.stringify(id)} in ${store.location}\n`);
      process.exitCode = 1;
      return;
    }
    if (session.unreadable !== undefined) {
      // Refused before a file is made: an export is the whole recording or nothing.
      process.stderr.write(`portcullis: ${session.unreadable}\n`);
      process.exitCode = 1;
      return;
    }
    if (session.tampered.length > 0)
      process.stderr.write(
        `portcullis: the session row disagrees with the recording (${session.tampered.map((m) => m.column).join(', ')}): the export carries the recorded values and lists the row's in "tampered"\n`,
      );
    if (o.output) out = createWriteStream(o.output, { mode: 0o600 });
    for await (const line of exportSession(store, session)) {
      if (!out.write(`${line}\n`)) await once(out, 'drain');
    }
  } catch (err) {
    failUnreadable(err);
  } finally {
    if (out !== process.stdout) await new Promise<void>((r) => (out as WriteStream).end(r));
    await store.close();
  }
}
