// @ts-check
// Which requests our local HTTP services answer: a page on another site can
// make the browser talk to 127.0.0.1 (DNS rebinding: its own name resolves to
// us), but it cannot make the browser send our name in the Host header, nor
// its own origin as ours. So the Host header must name us, and an Origin, when
// a browser sends one, must be one of our own pages. Pure, and generic: any of
// our servers passes its own names and port.

/** The names every local service answers to, whatever it was configured with. */
export const LOOPBACK_HOSTS = /** @type {const} */ (['127.0.0.1', 'localhost', '[::1]']);

/** A listen address that names no host: binding to it says nothing of how clients call us. */
const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

/**
 * @typedef {{ hosts: string[], port: number }} Guard
 *   hosts: names a request may use, lowercase, IPv6 in brackets; port: the one we listen on
 */

/**
 * The guard of a server configured with `host` (its listen address or name)
 * and `port`: the loopback names and that host, unless it is a wildcard.
 * @param {string} host @param {number} port @returns {Guard}
 */
export function guardFor(host, port) {
  const name = host.trim().toLowerCase();
  const bracketed = name.includes(':') && !name.startsWith('[') ? `[${name}]` : name;
  /** @type {string[]} */
  const hosts = [...LOOPBACK_HOSTS];
  if (!WILDCARDS.has(bracketed) && !hosts.includes(bracketed)) hosts.push(bracketed);
  return { hosts, port };
}

/**
 * A host and optional port as RFC 9110 writes them in Host (and, after the
 * scheme, in Origin); null for anything else: userinfo, paths, spaces, an
 * empty name. Lowercase, IPv6 kept in brackets.
 * @param {string} text @returns {{ host: string, port: number | null } | null}
 */
export function parseAuthority(text) {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?$/.exec(text.toLowerCase());
  if (!m) return null;
  return { host: m[1], port: m[2] === undefined ? null : Number(m[2]) };
}

/**
 * Whether a Host header names us: one of the guard's hosts, with our port or
 * none (a client on the default port of its scheme omits it; curl and
 * healthchecks often do). A missing or repeated header is refused.
 * @param {string | string[] | undefined} header @param {Guard} guard
 */
export function hostAllowed(header, guard) {
  if (typeof header !== 'string') return false;
  const at = parseAuthority(header);
  return at !== null && guard.hosts.includes(at.host) && (at.port === null || at.port === guard.port);
}

/**
 * Whether an Origin header is one of our own pages: http, one of the
 * guard's hosts, our port (browsers omit only the scheme's default, 80,
 * which then must be ours). No header is allowed: browsers send one on every
 * cross-site request, and scripts that send none are not a page in the
 * user's browser. "null" (sandboxed frames, files) is refused.
 * @param {string | string[] | undefined} header @param {Guard} guard
 */
export function originAllowed(header, guard) {
  if (header === undefined) return true;
  if (typeof header !== 'string') return false;
  const m = /^http:\/\/([^/?#]*)$/i.exec(header);
  const at = m ? parseAuthority(m[1]) : null;
  return at !== null && guard.hosts.includes(at.host) && (at.port ?? 80) === guard.port;
}

/**
 * Why a request is refused, or null when it may go on: 421 (Misdirected
 * Request) for a Host that is not ours, 403 for an Origin that is not ours
 * when `checkOrigin` (routes that read or change data). The error is one
 * line, for a JSON body.
 * @param {Record<string, string | string[] | undefined>} headers node's req.headers (lowercase names)
 * @param {Guard} guard @param {{ checkOrigin?: boolean }} [opts]
 * @returns {{ status: 421 | 403, error: string } | null}
 */
export function refusal(headers, guard, { checkOrigin = false } = {}) {
  const names = guard.hosts.map((h) => `${h}:${guard.port}`).join(', ');
  if (!hostAllowed(headers.host, guard))
    return {
      status: 421,
      error: `this server answers only to ${names} (Host was ${quote(headers.host)}): open it by one of those addresses`,
    };
  if (checkOrigin && !originAllowed(headers.origin, guard))
    return {
      status: 403,
      error: `requests from pages of ${quote(headers.origin)} are refused: only this server's own pages may call its API`,
    };
  return null;
}

/** A header value for an error message: quoted, short. @param {string | string[] | undefined} value */
const quote = (value) => (value === undefined ? 'missing' : JSON.stringify(String(value).slice(0, 80)));
