import { z } from 'zod';

/** The tool pinning slice of the config (`pins`; a connection's `tools.pin` turns pinning on for it). */
export function pinsSchema() {
  return z
    .strictObject({
      /**
       * Scan tool definitions when first seen and when they change (hidden characters, instructions aimed at the
       * model, references to other servers' tools): `quarantine` holds a suspicious one for an admin, even at
       * first sight; `flag` pins it and keeps the reasons; `off`.
       */
      scan: z.enum(['quarantine', 'flag', 'off']).default('quarantine'),
      /** A tool name two connections offer: `allow` says nothing; `flag` shows it (pins list, console); `quarantine` also holds the later connection's tool. */
      duplicateNames: z.enum(['allow', 'flag', 'quarantine']).default('flag'),
    })
    .prefault({});
}

export type PinsConfig = z.output<ReturnType<typeof pinsSchema>>;
