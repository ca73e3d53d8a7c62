import { z } from 'zod';
import { resolveSecretString, SecretReferenceError, type SecretSources, type SecretString } from '../core/secrets.js';

/** The store URL (`store`): `sqlite:PATH` or `postgres://…`, where a password may only come from a reference. */
export function storeUrl(sources: SecretSources) {
  return z
    .string()
    .optional()
    .transform((template, ctx) => {
      if (template === undefined) return undefined;
      let s: SecretString;
      try {
        s = resolveSecretString(template, sources);
      } catch (err) {
        if (!(err instanceof SecretReferenceError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
        return z.NEVER;
      }
      const value = s.reveal();
      if (value.startsWith('sqlite:')) {
        if (value.length === 'sqlite:'.length) ctx.addIssue({ code: 'custom', message: 'sqlite: needs a file path, e.g. sqlite:./data/portcullis.db' });
        return s;
      }
      let url: URL | undefined;
      try {
        url = /^postgres(ql)?:\/\//.test(value) ? new URL(value) : undefined;
      } catch {
        url = undefined;
      }
      if (url === undefined || (url.hostname === '' && url.pathname.length <= 1)) {
        ctx.addIssue({
          code: 'custom',
          message: 'expected sqlite:PATH or postgres://USER@HOST:PORT/DB (a password only as a reference: postgres://user:${env:PGPASSWORD}@host/db)',
        });
        return z.NEVER;
      }
      if (url.password !== '' && !s.hasReferences) {
        ctx.addIssue({ code: 'custom', message: 'the password in the store URL must be a reference such as ${env:PGPASSWORD}, not a literal' });
        return z.NEVER;
      }
      return s;
    });
}
