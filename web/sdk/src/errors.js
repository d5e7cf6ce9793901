// Typed errors. Every failure the SDK reports is a HextrackError carrying
// the server's error code (the `code` of {"error":{"code","message"}}) and
// the HTTP status; status 0 means the request never got an answer.

export class HextrackError extends Error {
  // status: HTTP status (0: no answer); code: the server's error code, or
  // one of the SDK's own ("network", "timeout", "protocol"); details: the
  // server's error.details; body: the parsed error body.
  constructor(status, code, message, { details, body, cause } = {}) {
    super(message || code || `HTTP ${status}`, cause ? { cause } : undefined);
    this.name = 'HextrackError';
    this.status = status;
    this.code = code || (status ? `http_${status}` : 'network');
    this.details = details;
    this.body = body;
  }
}

// AuthError: the server rejected the token (401) and no fresh one could
// be had: the token provider returned none, or the refreshed token was
// rejected too. Streams stop on it instead of retrying forever.
export class AuthError extends HextrackError {
  constructor(status, code, message, extra) {
    super(status, code, message, extra);
    this.name = 'AuthError';
  }
}

// TripGoneError: the server does not know the trip: its feed and the
// trip itself answer 404 (it never existed, or its live state was lost
// with nothing archived, e.g. an embedded Redis restarted). No retry can
// bring it back: watchers stop on it.
export class TripGoneError extends HextrackError {
  constructor(from) {
    super(404, from.code, from.message, { details: from.details, body: from.body });
    this.name = 'TripGoneError';
  }
}

// fromBody builds the error of a non-2xx answer from its parsed JSON.
export function fromBody(status, json, statusText) {
  const e = (json && json.error) || {};
  return new HextrackError(status, e.code, e.message || statusText || `HTTP ${status}`, { details: e.details, body: json });
}

// isNetwork: the request never reached a server (down, restarting, offline).
export function isNetwork(err) {
  return err instanceof HextrackError && err.status === 0;
}

// isRejected: the server refused the caller's token (bad signature,
// revoked, expired); the same token can never succeed.
export function isRejected(err) {
  return err instanceof HextrackError && err.status === 401;
}

// isMissing: this server has no such endpoint (yet).
export function isMissing(err) {
  return err instanceof HextrackError && (err.status === 404 || err.status === 405 || err.status === 501);
}

// isAbort: the caller stopped the operation.
export function isAbort(err) {
  return !!err && err.name === 'AbortError';
}

export function abortError() {
  return new DOMException('aborted', 'AbortError');
}
