import { attestSession } from '../../recording/attest.js';
import { nowUs } from '../../recording/time.js';
import { parseDuration } from '../../core/duration.js';
import { eventsOfGroup, exchangeGroups, parseGroupId } from '../../recording/exchange-groups.js';
import { findGroup, unreadableGroup } from '../../recording/session-groups.js';
import { isoUs } from '../../recording/transcript.js';
import { eventsOfTrace, isTraceId } from '../../recording/exchanges.js';
import { eraOfEdge } from '../../store/types.js';
import { describeEvent, describeSession, shown } from '../../recording/transcript.js';
import { failUnreadable, storeForCommand } from '../store-for-command.js';
import { failMissingGroup } from './missing-group.js';

export interface ShowOptions {
  config?: string;
  json?: boolean;
  trace?: string;
  group?: string;
  idleGap?: string;
}

/** `portcullis sessions show`: a session's facts and its transcript, whole or one trace or group of exchanges. */
export async function sessionsShowAction(id: string, o: ShowOptions): Promise<void> {
  if (o.trace !== undefined && !isTraceId(o.trace)) {
    process.stderr.write(`portcullis: --trace expects a W3C trace id (32 hex digits, not all zero), found ${JSON.stringify(o.trace.slice(0, 80))}\n`);
    process.exit(2);
  }
  const gapArg = o.idleGap === undefined ? undefined : parseDuration(o.idleGap);
  if (o.idleGap !== undefined && (gapArg === undefined || gapArg < 1)) {
    process.stderr.write(`portcullis: --idle-gap expects a duration such as 5m, 90s or 500ms, found ${JSON.stringify(o.idleGap.slice(0, 80))}\n`);
    process.exit(2);
  }
  if (o.group !== undefined && o.trace !== undefined) {
    process.stderr.write('portcullis: --group and --trace pick exchanges two ways; give one\n');
    process.exit(2);
  }
  const { config, store } = await storeForCommand(o.config);
  const gapMs = gapArg ?? config.sessions.viewIdleGapMs;
  try {
    if (parseGroupId(id) !== undefined) {
      if (o.group !== undefined || o.trace !== undefined) {
        process.stderr.write('portcullis: a group id names one group already; --group and --trace pick within a session\n');
        process.exitCode = 2;
        return;
      }
      const found = await findGroup(store, id, gapMs);
      if (found === undefined) {
        failMissingGroup(store, id, 'shown', await unreadableGroup(store, id));
        return;
      }
      const { group, sessions, events } = found;
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ group, idleGapMs: gapMs, sessions, events })}\n`);
        return;
      }
      process.stdout.write(
        [
          `Group       ${group.id} (${group.traceId !== undefined ? `trace ${group.traceId}` : `idle gap ${group.label}`}; grouping, not proof)`,
          `User        ${shown(group.subject)}${group.email ? ` <${shown(group.email)}>` : ''}${group.issuer ? ` (${shown(group.issuer)})` : ''}`,
          `Connection  ${shown(group.connection)}`,
          `Exchanges   ${group.exchanges}, ${isoUs(group.firstUs)} to ${isoUs(group.lastUs)}${group.open ? ' (a session of it is open: more may join)' : ''}`,
          `Sessions    ${group.sessions.join(', ')} (pooled; each verifiable whole with \`sessions verify\`)`,
          `Idle gap    ${gapMs}ms`,
        ].join('\n') + '\n',
      );
      for (const s of sessions) for (const m of s.tampered) process.stdout.write(`ALTERED     ${s.id}: ${shown(m.message)}\n`);
      process.stdout.write('\n');
      // Offsets from the group's first request (the pooled sessions' own clocks start apart), each line led by its session.
      for (const e of events) process.stdout.write(`${e.sessionId.slice(0, 8)}  ${describeEvent({ ...e, monoUs: Math.max(0, e.timeUs - group.firstUs) })}\n`);
      return;
    }
    const session = await attestSession(store, await store.getSession(id));
    if (session === undefined) {
      process.stderr.write(`portcullis: no session ${JSON.stringify(id)} in ${store.location}; \`portcullis sessions list\` shows the recorded ones\n`);
      process.exitCode = 1;
      return;
    }
    if (session.unreadable !== undefined) {
      // Its facts above the transcript come from its (encrypted) opening: there is nothing to show but why.
      process.stderr.write(`portcullis: ${session.unreadable}\n`);
      process.exitCode = 1;
      return;
    }
    if (o.trace !== undefined) {
      // One trace's exchanges need the whole session read (responses and rounds follow their requests' ids).
      const events = eventsOfTrace(await store.events(id, -1, 1_000_000), o.trace);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ session, trace: o.trace.toLowerCase(), events })}\n`);
        return;
      }
      process.stdout.write(`${describeSession(session, nowUs()).join('\n')}\n`);
      for (const m of session.tampered) process.stdout.write(`ALTERED     ${shown(m.message)}\n`);
      process.stdout.write(`Trace       ${o.trace.toLowerCase()}: ${events.length} events (as the client grouped them; a trace id proves nothing)\n\n`);
      for (const e of events) process.stdout.write(`${describeEvent(e)}\n`);
      if (events.length === 0) process.stdout.write('no exchange of this session carries that trace id\n');
      return;
    }
    const modern = eraOfEdge(session.edge) === 'modern';
    if (o.group !== undefined) {
      const events = await store.events(id, -1, 1_000_000);
      const label = o.group.startsWith('trace ') ? o.group : isTraceId(o.group) ? `trace ${o.group.toLowerCase()}` : o.group;
      const picked = eventsOfGroup(events, label, gapMs);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ session, group: label, idleGapMs: gapMs, events: picked })}\n`);
        return;
      }
      process.stdout.write(`${describeSession(session, nowUs()).join('\n')}\n`);
      for (const m of session.tampered) process.stdout.write(`ALTERED     ${shown(m.message)}\n`);
      process.stdout.write(`Group       ${shown(label)}: ${picked.length} events (grouping, not proof)\n\n`);
      for (const e of picked) process.stdout.write(`${describeEvent(e)}\n`);
      if (picked.length === 0) process.stdout.write('no exchange of this session is in that group\n');
      return;
    }
    if (o.json) {
      const events = await store.events(id, -1, 1_000_000);
      const groups = modern ? { idleGapMs: gapMs, groups: exchangeGroups(events, gapMs).groups } : {};
      process.stdout.write(`${JSON.stringify({ session, ...groups, events })}\n`);
      return;
    }
    process.stdout.write(`${describeSession(session, nowUs()).join('\n')}\n`);
    // The facts above are the recording's; what the row claims instead is shown, never taken as fact.
    for (const m of session.tampered) process.stdout.write(`ALTERED     ${shown(m.message)}\n`);
    if (modern) {
      const { groups } = exchangeGroups(await store.events(id, -1, 1_000_000), gapMs);
      for (const g of groups)
        process.stdout.write(
          `Group       ${shown(g.label)}: ${g.exchanges} exchange${g.exchanges === 1 ? '' : 's'}, ${new Date(g.firstUs / 1000).toISOString()} to ${new Date(g.lastUs / 1000).toISOString()}\n`,
        );
    }
    process.stdout.write('\n');
    for (let after = -1; ; ) {
      const events = await store.events(id, after, 5000);
      for (const e of events) process.stdout.write(`${describeEvent(e)}\n`);
      if (events.length < 5000) break;
      after = events.at(-1)!.seq;
    }
  } catch (err) {
    failUnreadable(err);
  } finally {
    await store.close();
  }
}
