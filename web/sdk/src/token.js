// Where a connection's token comes from: a fixed `token`, or a
// `tokenProvider({refresh, error})` called for the first token and again,
// with refresh true, when the server rejects the current one (401: bad
// signature after a restart with a new secret, revoked, expired).
//
// Never an endless retry: a provider that returns no token, or a
// refreshed token the server rejects as well (before any request with it
// succeeded), ends in an AuthError carrying the server's code. A provider
// that throws (the server is down while minting) is retried like any
// network failure.
import { AuthError } from './errors.js';

export class TokenSource {
  constructor({ token, tokenProvider } = {}) {
    this.token = token || '';
    this.provider = tokenProvider || null;
    this.refreshed = false;
    this.pending = null;
  }

  // get returns the current token, asking the provider for the first one.
  async get() {
    if (this.token || !this.provider) return this.token;
    if (!this.pending) {
      this.pending = (async () => {
        try {
          this.token = (await this.provider({ refresh: false })) || '';
          return this.token;
        } finally {
          this.pending = null;
        }
      })();
    }
    return this.pending;
  }

  // ok records that a request with the current token went through.
  ok() {
    this.refreshed = false;
  }

  // rejected handles a 401 (err) of a request made with token used: a
  // fresh token from the provider, or an AuthError when there is none or
  // the refreshed one was rejected too. Requests that were under way with
  // a token already replaced just take the new one (no second refresh).
  async rejected(err, used) {
    if (used !== undefined && this.token && used !== this.token) return this.token;
    if (used !== undefined && this.pending) return this.pending;
    const fatal = (why) => new AuthError(err.status || 401, err.code, `${why}: ${err.message}`, { details: err.details, body: err.body, cause: err });
    if (!this.provider) throw fatal('the server rejected the token');
    if (this.refreshed) throw fatal('the server rejected the refreshed token');
    if (!this.pending) {
      this.pending = (async () => {
        try {
          const t = await this.provider({ refresh: true, error: err });
          if (!t) throw fatal('the server rejected the token and no fresh one was provided');
          this.token = t;
          this.refreshed = true;
          return t;
        } finally {
          this.pending = null;
        }
      })();
    }
    return this.pending;
  }
}

