import type { DatabasePort } from './port.js';
import { type Entry, insertSql, num, type Row } from './rows.js';
import { sql } from './sql.js';
import type { ConsoleLoginRow, ConsoleSessionRow } from './console-types.js';

/** The web console's sign-ins in progress and signed-in sessions, in the store so any gateway instance serves them. */
export interface ConsoleStore {
  /** A console sign-in started (see ConsoleLoginRow). */
  putConsoleLogin(row: ConsoleLoginRow): Promise<void>;
  /** Takes the sign-in with this state once: it is deleted, and only returned when not expired. */
  takeConsoleLogin(state: string, nowUs: number): Promise<ConsoleLoginRow | undefined>;
  putConsoleSession(row: ConsoleSessionRow): Promise<void>;
  /** The console session with this id hash, unless it has expired. */
  getConsoleSession(idHash: string, nowUs: number): Promise<ConsoleSessionRow | undefined>;
  deleteConsoleSession(idHash: string): Promise<void>;
  /** Deletes expired console sign-ins and sessions; how many. */
  pruneConsole(nowUs: number): Promise<number>;
}

export function consoleStore(db: DatabasePort): ConsoleStore {
  return {
    async putConsoleLogin(row) {
      await db.run(insertSql('console_logins', consoleLoginToDb(row)));
    },
    async takeConsoleLogin(state, nowUs) {
      const [row] = await db.query(sql`DELETE FROM console_logins WHERE state = ${state} RETURNING *`);
      const login = row === undefined ? undefined : consoleLoginFromDb(row);
      return login !== undefined && login.expiresAtUs > nowUs ? login : undefined;
    },
    async putConsoleSession(row) {
      await db.run(insertSql('console_sessions', consoleSessionToDb(row)));
    },
    async getConsoleSession(idHash, nowUs) {
      const [row] = await db.query(sql`SELECT * FROM console_sessions WHERE id_hash = ${idHash} AND expires_at_us > ${nowUs}`);
      return row === undefined ? undefined : consoleSessionFromDb(row);
    },
    async deleteConsoleSession(idHash) {
      await db.run(sql`DELETE FROM console_sessions WHERE id_hash = ${idHash}`);
    },
    async pruneConsole(nowUs) {
      const logins = await db.run(sql`DELETE FROM console_logins WHERE expires_at_us <= ${nowUs}`);
      return logins + (await db.run(sql`DELETE FROM console_sessions WHERE expires_at_us <= ${nowUs}`));
    },
  };
}

function consoleLoginFromDb(r: Row): ConsoleLoginRow {
  return {
    state: String(r.state),
    issuer: String(r.issuer),
    codeVerifier: String(r.code_verifier),
    nonce: String(r.nonce),
    returnTo: String(r.return_to),
    redirectUri: String(r.redirect_uri),
    resource: String(r.resource),
    expiresAtUs: num(r.expires_at_us),
  };
}

function consoleLoginToDb(l: ConsoleLoginRow): Entry[] {
  return [
    ['state', l.state],
    ['issuer', l.issuer],
    ['code_verifier', l.codeVerifier],
    ['nonce', l.nonce],
    ['return_to', l.returnTo],
    ['redirect_uri', l.redirectUri],
    ['resource', l.resource],
    ['expires_at_us', l.expiresAtUs],
  ];
}

function consoleSessionFromDb(r: Row): ConsoleSessionRow {
  return {
    idHash: String(r.id_hash),
    subject: String(r.subject),
    issuer: String(r.issuer),
    email: r.email === null ? null : String(r.email),
    name: r.name === null ? null : String(r.name),
    groups: JSON.parse(String(r.groups)) as string[],
    csrfToken: String(r.csrf_token),
    createdAtUs: num(r.created_at_us),
    expiresAtUs: num(r.expires_at_us),
  };
}

function consoleSessionToDb(s: ConsoleSessionRow): Entry[] {
  return [
    ['id_hash', s.idHash],
    ['subject', s.subject],
    ['issuer', s.issuer],
    ['email', s.email],
    ['name', s.name],
    ['groups', JSON.stringify(s.groups)],
    ['csrf_token', s.csrfToken],
    ['created_at_us', s.createdAtUs],
    ['expires_at_us', s.expiresAtUs],
  ];
}
