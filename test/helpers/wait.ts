/** Polls `check` until it holds; fails naming `what` after `ms`. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether `GET /readyz` at `base` is answered 200 now (a ready gateway, or one through a load balancer); false when refused. */
export async function answersReady(base: string): Promise<boolean> {
  const res = await fetch(new URL('/readyz', base)).catch(() => undefined);
  await res?.body?.cancel();
  return res?.status === 200;
}
