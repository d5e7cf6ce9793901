// Tokens for the pages. In dev mode the server mints them at
// POST /v1/dev/token; otherwise the user pastes one. Tokens are kept in
// localStorage per role so a reload (or a restarted tab) keeps its identity.
// The SDK (@hextrack/client) asks for them through each page's token
// provider, and again when the server rejects one.
import { decodeToken, devToken as mint } from '@hextrack/client';

const key = (role) => `hextrack.token.${role}`;

// decode returns the JWT claims without verifying them (the server does).
export const decode = decodeToken;

function fresh(token, role) {
  const c = token && decode(token);
  return !!c && c.role === role && typeof c.exp === 'number' && c.exp * 1000 > Date.now() + 60000;
}

export function stored(role) {
  const t = localStorage.getItem(key(role));
  return fresh(t, role) ? t : null;
}

export function store(role, token) {
  if (!fresh(token, role)) throw new Error(`not a valid ${role} token (or it expired)`);
  localStorage.setItem(key(role), token);
}

export function forget(role) {
  localStorage.removeItem(key(role));
}

// devToken asks the server for a token (dev mode only). Returns null when
// the server is not in dev mode.
export async function devToken(role, sub, ttl = '12h') {
  const t = await mint(role, sub, { ttl });
  if (t) store(role, t);
  return t;
}

// renew replaces a token the server rejected (401: bad signature after a
// restart with a new secret, revoked, expired): the stored one is dropped
// and, in dev mode, a fresh one minted for the same subject. Null means
// the user must sign in again (not dev mode, or the server is down).
export async function renew(role, sub) {
  forget(role);
  try {
    return await devToken(role, sub);
  } catch {
    return null;
  }
}

// ensure returns a stored token for role and sub, minting a dev one when
// needed. Null means: ask the user for a token.
export async function ensure(role, sub) {
  const t = stored(role);
  if (t && (!sub || decode(t).sub === sub)) return t;
  return devToken(role, sub);
}

// randomSub returns a stable per-browser subject for role.
export function stableSub(role, prefix) {
  const k = `hextrack.sub.${role}`;
  let s = localStorage.getItem(k);
  if (!s) {
    const b = new Uint8Array(4);
    crypto.getRandomValues(b);
    s = prefix + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    localStorage.setItem(k, s);
  }
  return s;
}
