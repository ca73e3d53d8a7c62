/**
 * The `x-mcp-header` declarations of a tool's input schema (MCP 2026-07-28, basic/transports/streamable-http.mdx,
 * "Custom Headers from Tool Parameters"): which arguments a Streamable HTTP client mirrors into `Mcp-Param-{Name}`
 * headers. One reading for both sides of the gateway, so what the edge checks is what the upstream side sends.
 */

/** Where one `x-mcp-header` argument lives: its header name, its chain of `properties` keys, its type. */
export interface XMcpHeader {
  header: string;
  path: string[];
  type: 'string' | 'integer' | 'boolean';
}

/** RFC 9110 token: the characters a header name may have (no control characters, no CR or LF). */
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The declarations, or why they make the tool definition invalid: a name that is not a token (or empty), one used
 * twice (case-insensitively), one on anything but a string, integer or boolean (`number` is not allowed), or one not
 * reachable from the root through `properties` keys alone (under items, anyOf, $defs…, or on the root itself).
 */
export function xMcpHeaders(inputSchema: unknown): XMcpHeader[] | { invalid: string } {
  const found: XMcpHeader[] = [];
  const seen = new Set<string>();
  let invalid: string | undefined;
  const walk = (schema: unknown, path: string[], reachable: boolean): void => {
    if (invalid !== undefined || schema === null || typeof schema !== 'object') return;
    const s = schema as Record<string, unknown>;
    const header = s['x-mcp-header'];
    if (header !== undefined) {
      const type = s.type;
      if (!reachable || path.length === 0) invalid = `x-mcp-header at ${path.join('.') || 'the root'} is not reachable through properties alone`;
      else if (typeof header !== 'string' || !token.test(header)) invalid = `x-mcp-header ${JSON.stringify(header).slice(0, 100)} is not an HTTP header name`;
      else if (seen.has(header.toLowerCase())) invalid = `x-mcp-header ${JSON.stringify(header)} is used twice`;
      else if (type !== 'string' && type !== 'integer' && type !== 'boolean')
        invalid = `x-mcp-header ${header} is on a ${JSON.stringify(type ?? null).slice(0, 40)}, not a string, integer or boolean`;
      else {
        seen.add(header.toLowerCase());
        found.push({ header, path, type });
      }
    }
    for (const [key, value] of Object.entries(s)) {
      if (key === 'properties' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
        for (const [name, sub] of Object.entries(value as Record<string, unknown>)) walk(sub, [...path, name], reachable);
      } else if (value !== null && typeof value === 'object') {
        // Anything under items, anyOf, $defs…: not statically reachable.
        const children = Array.isArray(value) ? value : key === 'x-mcp-header' ? [] : [value];
        for (const child of children) walk(child, path, false);
      }
    }
  };
  walk(inputSchema, [], true);
  return invalid === undefined ? found : { invalid };
}
