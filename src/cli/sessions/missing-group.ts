import type { Store } from '../../store/store.js';

/**
 * Ends `sessions show|export|verify <group id>` that found no group to work on, on stderr with exit code 1. When the id
 * names a group of a session this config cannot read (`unreadable`, from unreadableGroup), why it cannot be `verb`
 * (the group is there all the same); else that there is no such group, and where the groups are listed.
 */
export function failMissingGroup(
  store: Pick<Store, 'location'>,
  id: string,
  verb: 'shown' | 'exported' | 'verified',
  unreadable?: { unreadable: string },
): void {
  process.stderr.write(
    unreadable === undefined
      ? `portcullis: no group ${JSON.stringify(id)} in ${store.location}; \`portcullis sessions list --groups\` shows them\n`
      : `portcullis: group ${JSON.stringify(id)} cannot be ${verb}: ${unreadable.unreadable}\n`,
  );
  process.exitCode = 1;
}
