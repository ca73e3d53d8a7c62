/** Who is on a session or makes a request: a verified token's subject and issuer, and the groups access is decided by. */
export interface Identity {
  /** The token's `sub`, unique within its issuer. */
  subject: string;
  /** The token's `iss`: a subject is only meaningful together with it. */
  issuer: string;
  email?: string;
  name?: string;
  /** Portcullis groups (after any role mapping); empty when the claim is missing or malformed. */
  groups: string[];
}

/** Whether two identities are the same principal (same subject from the same issuer). */
export function samePrincipal(a: Identity, b: Identity): boolean {
  return a.subject === b.subject && a.issuer === b.issuer;
}

/** A caller on a connection: what policy (guardrail facts, masking rules) decides on, without the session around it. */
export interface CallerOnConnection {
  readonly connection: string;
  readonly identity: Identity;
}
