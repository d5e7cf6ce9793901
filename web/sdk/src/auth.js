// Token helpers that need no browser: reading a JWT's claims (unverified:
// the server verifies) and minting a dev-mode token.
import { request } from './http.js';
import { isMissing } from './errors.js';

// decodeToken returns the JWT's claims without verifying them, or null.
export function decodeToken(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
  } catch {
    return null;
  }
}

// devToken asks a dev-mode server for a token (POST /v1/dev/token). It
// resolves to null when the server is not in dev mode (404), and rejects
// with a HextrackError otherwise.
export async function devToken(role, sub, { baseURL, ttl = '12h', trip, fetch } = {}) {
  try {
    const body = { role, sub, ttl };
    if (trip) body.trip = trip;
    const r = await request('/v1/dev/token', { method: 'POST', body, baseURL, fetch });
    return (r && r.token) || null;
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  }
}
