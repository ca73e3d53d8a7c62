import type { ComponentChildren } from 'preact';

/** A failure to tell the person, announced to screen readers; nothing when there is none. */
export function Alert({ message }: { message: string | undefined }) {
  if (message === undefined) return null;
  return (
    <p role="alert" class="error">
      {message}
    </p>
  );
}

/**
 * What a list fetched from the API shows: "Loading…" until it arrives, why it could not be read (the API's own
 * words), `empty` when it has nothing, else `children` of its rows.
 */
export function Fetched<T>({ value, empty, children }: { value: T[] | string | undefined; empty: string; children: (rows: T[]) => ComponentChildren }) {
  if (value === undefined) return <p>Loading…</p>;
  if (typeof value === 'string') return <p class="hint">{value}</p>;
  if (value.length === 0) return <p class="hint">{empty}</p>;
  return <>{children(value)}</>;
}
