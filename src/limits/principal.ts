/** A principal: a subject is only meaningful together with its issuer. */
export interface Principal {
  subject: string;
  issuer: string;
}

const keys = new WeakMap<Principal, string>();

/** The key of a principal (remembered per identity object: a request's costs a lookup). */
export function principalKey(p: Principal): string {
  let key = keys.get(p);
  if (key === undefined) keys.set(p, (key = JSON.stringify([p.issuer, p.subject])));
  return key;
}
