/**
 * Whether a host or an address is this machine's loopback interface. One definition for every place that
 * treats loopback specially: listen addresses, plain-http IdPs and redirects, the API's loopback-only mode.
 */

/** A host name or literal as written in a URL or config: `localhost`, `127.x.y.z`, `::1` or `[::1]`. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A peer address as the socket reports it, IPv4-mapped IPv6 included (`::ffff:127.0.0.1`). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  return isLoopbackHost(address.startsWith('::ffff:') ? address.slice(7) : address);
}

/** A URL that may be plain http because it never leaves the machine. */
export function isLoopbackHttpUrl(url: URL): boolean {
  return url.protocol === 'http:' && isLoopbackHost(url.hostname);
}
