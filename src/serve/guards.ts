// The server's admission checks, kept apart from the routes: who may call (the API key, compared
// in constant time so its bytes cannot be learned from response times), under which name the
// server may be addressed (the Host header, against DNS rebinding: a web page whose domain is made
// to resolve to this address must not reach the API from a browser), and how much work may wait
// (a budget of queued sample-tokens, so a burst of requests cannot queue unbounded generation).
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Whether the Authorization header carries `Bearer <key>`; constant time in the key's content. */
export function apiKeyMatches(authorization: string | undefined, key: string): boolean {
  // Digests have one length, so the comparison time depends on neither the key nor the guess.
  return timingSafeEqual(digest(authorization ?? ''), digest(`Bearer ${key}`));
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The hostname of a Host header ("[::1]:8000" -> "::1", "Example.org:80" -> "example.org"). */
export function hostnameOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  return h.replace(/:\d*$/, '');
}

/**
 * Whether a request's Host header names this server: the bound address itself; any IP literal when
 * bound to all interfaces (a rebinding attack needs a domain name); `localhost` when bound to a
 * loopback or wildcard address; or a name the operator allowed with --allow-host.
 */
export function hostAllowed(header: string | undefined, boundHost: string, allowHosts: readonly string[]): boolean {
  if (header === undefined) return false;
  const name = hostnameOf(header);
  const bound = boundHost.replace(/^\[|\]$/g, '').toLowerCase();
  if (allowHosts.some((h) => h.toLowerCase() === name)) return true;
  if (name === bound) return true;
  if (WILDCARD.has(bound)) return isIP(name) !== 0 || name === 'localhost';
  return isLoopback(bound) && isLoopback(name);
}

/** A warning for binding where others can reach the server without a key, or null. */
export function exposureWarning(host: string, apiKey: string | undefined): string | null {
  if (apiKey || isLoopback(host)) return null;
  return (
    `medix serve: warning: listening on ${host} (not a loopback address) without an API key: ` +
    'anyone who can reach it can use the model; set --api-key or MEDIX_API_KEY'
  );
}

/**
 * Queued work in sample-tokens (prompts x n x max_tokens per request), reserved when a request is
 * admitted and released when it finishes, so the bound holds however the engine schedules.
 */
export class TokenBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  get queued(): number {
    return this.used;
  }

  /** Reserves `cost`; false when it does not fit beside what is queued now. */
  tryReserve(cost: number): boolean {
    if (this.used + cost > this.limit) return false;
    this.used += cost;
    return true;
  }

  release(cost: number): void {
    this.used -= cost;
  }
}
