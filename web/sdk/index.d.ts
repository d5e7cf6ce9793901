// Type declarations of @hextrack/client (written by hand; the sources are
// plain ESM JavaScript).

/** Every failure the client reports: the server's error code and HTTP status (0: no answer). */
export class HextrackError extends Error {
  constructor(status: number, code?: string, message?: string, extra?: { details?: unknown; body?: unknown; cause?: unknown });
  /** HTTP status; 0 when the request got no answer (unreachable, broken, idle, buffered). */
  readonly status: number;
  /** The server's error code (e.g. "invalid_token", "forbidden", "not_found"), or the client's own: "network", "idle", "buffered", "timeout", "closed", "replaced", "command_failed". */
  readonly code: string;
  /** The server's error.details, when it sent any. */
  readonly details?: unknown;
  /** The parsed error body. */
  readonly body?: unknown;
}

/** The server rejected the token (401) and no fresh one could be had: the provider gave none, or the refreshed token was rejected too. Streams stop on it. */
export class AuthError extends HextrackError {}

/** The server does not know the trip (404 for its feed and for the trip itself): it never existed, or its live state was lost with nothing archived. Watchers stop on it. */
export class TripGoneError extends HextrackError {}

export function isNetwork(err: unknown): err is HextrackError;
export function isRejected(err: unknown): err is HextrackError;
export function isMissing(err: unknown): err is HextrackError;
export function isAbort(err: unknown): boolean;

/** Called for the first token (refresh false) and after the server rejected the current one (refresh true). Return null/"" when there is none: the stream ends in an AuthError. */
export type TokenProvider = (ctx: { refresh: boolean; error?: HextrackError }) => string | null | undefined | Promise<string | null | undefined>;

export interface AuthOptions {
  /** A fixed token. */
  token?: string;
  /** Where tokens come from; called again on 401. */
  tokenProvider?: TokenProvider;
  /** The server, e.g. "https://hextrack.example"; default: relative to the page. */
  baseURL?: string;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

export interface BackoffOptions {
  /** First retry delay step, ms (default 500). */
  backoffMs?: number;
  /** Cap of the retry delay, ms (default 5000). */
  maxBackoffMs?: number;
}

/** The envelope every transport delivers. */
export interface TripEvent<D = any> {
  /** Feed ID "<ms>-<seq>"; absent for live-only events (trip.location). */
  id?: string;
  /** e.g. snapshot, reset, trip.created, trip.assigned, trip.status, trip.arriving, trip.eta, trip.location, trip.message, trip.cancelled, payment.status, and any type a newer server adds. */
  type: string;
  topic?: string;
  ts?: string;
  data: D;
}

export interface EventMeta {
  /** True for a durable event missed while disconnected and replayed on resume. */
  replayed: boolean;
  transport: 'sse' | 'longpoll' | 'poll';
}

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'resumed' | 'reset' | 'signed-out' | 'error' | 'closed';

export interface TripStatus {
  state: ConnectionState;
  /** The transport in use now. */
  transport: 'sse' | 'longpoll' | 'poll';
  /** What was asked for: "auto" or a fixed transport. */
  mode: Transport;
  /** Human-readable detail ("HTTP 503; attempt 2, retrying in 1.2 s"). */
  detail: string;
  attempt?: number;
  retryInMs?: number;
  /** With "resumed": how many durable events were replayed. */
  missed?: number;
  resumes?: number;
  /** Set when falling back: the transport taken next. */
  fallback?: 'longpoll' | 'poll';
  error?: HextrackError;
}

export type Transport = 'auto' | 'sse' | 'longpoll' | 'poll';
export const TRANSPORTS: Transport[];
export function label(t: Transport | string): string;
export function compareIds(a: string, b: string): -1 | 0 | 1;

export interface WatchTripOptions extends AuthOptions, BackoffOptions {
  /** "auto" (default): SSE, falling back to long-poll and ETag polling when the path can't carry SSE, and back. */
  transport?: Transport;
  /** Resume after this feed ID (e.g. a snapshot's feed_position) instead of starting with a snapshot. */
  lastEventId?: string;
  /** "auto" only: no byte of an SSE body within this many ms while a plain GET works is a buffering proxy: fall back (default 5000). */
  firstByteMs?: number;
  /** A stream silent this long is reconnected (default 45000; the server's heartbeat is 15 s). */
  idleMs?: number;
  /** ETag polling period until the server's X-Poll-Interval says otherwise (default 2000). */
  pollMs?: number;
  /** Long-poll wait, seconds (default 25). */
  waitS?: number;
  /** After a fallback, try SSE again after this many ms, doubling up to maxProbeMs (defaults 15000, 120000). */
  probeMs?: number;
  maxProbeMs?: number;
}

export interface Listenable<M> {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof M>(name: K, fn: M[K]): () => void;
  off<K extends keyof M>(name: K, fn: M[K]): void;
}

export interface TripWatchEvents {
  /** Every event of every type, on every transport (snapshot and reset included). */
  event: (ev: TripEvent, meta: EventMeta) => void;
  status: (s: TripStatus) => void;
  /** Fatal: the watcher stopped (an AuthError when the token can't be renewed, a TripGoneError when the server does not know the trip). */
  error: (err: HextrackError) => void;
  /** Events of one type, e.g. on('trip.arriving', fn). */
  [type: string]: (...args: any[]) => void;
}

export class TripWatch implements Listenable<TripWatchEvents> {
  readonly tripId: string;
  /** The transport in use now. */
  readonly transport: 'sse' | 'longpoll' | 'poll';
  /** The last durable event's ID (the resume position). */
  readonly lastEventId: string;
  readonly closed: boolean;
  on<K extends keyof TripWatchEvents>(name: K, fn: TripWatchEvents[K]): () => void;
  off<K extends keyof TripWatchEvents>(name: K, fn: TripWatchEvents[K]): void;
  /** Picks a transport ("auto" or a fixed one) and reconnects on it, resuming. */
  setTransport(t: Transport): void;
  /** Stops for good. */
  close(): void;
}

/** Watches a trip's events; starts on the next microtask, so listeners added right after the call miss nothing. */
export function watchTrip(tripId: string, opts?: WatchTripOptions): TripWatch;

export interface StreamEvent<D = any> {
  id?: string;
  type: string;
  topic?: string;
  ts?: string;
  data: D;
}

export interface StreamStatus {
  state: ConnectionState;
  detail: string;
  attempt?: number;
  retryInMs?: number;
  error?: HextrackError;
}

export interface StreamWatchEvents {
  event: (ev: StreamEvent) => void;
  status: (s: StreamStatus) => void;
  error: (err: HextrackError) => void;
  [type: string]: (...args: any[]) => void;
}

export interface WatchStreamOptions extends AuthOptions, BackoffOptions {
  idleMs?: number;
  firstByteMs?: number;
}

export class StreamWatch implements Listenable<StreamWatchEvents> {
  /** Like EventSource's: 0 connecting, 1 open, 2 closed. */
  readonly readyState: 0 | 1 | 2;
  readonly closed: boolean;
  on<K extends keyof StreamWatchEvents>(name: K, fn: StreamWatchEvents[K]): () => void;
  off<K extends keyof StreamWatchEvents>(name: K, fn: StreamWatchEvents[K]): void;
  close(): void;
}

/** Keeps any of the server's event streams open (e.g. "/v1/ops/summary/stream"), reconnecting with backoff. */
export function watchStream(path: string, opts?: WatchStreamOptions): StreamWatch;

/** A location ping. seq increases per driver. */
export interface Ping {
  lat: number;
  lng: number;
  ts: string | number;
  seq: number;
  accuracy?: number;
  speed?: number;
  heading?: number;
}

export interface DriverCommand<D = any> {
  /** Feed ID: commands are replayed until acked. */
  id: string;
  /** offer, trip.cancelled, trip.reassigned, trip.address_changed, ... */
  type: string;
  data: D;
  ts?: string;
  topic?: string;
}

export interface DriverStatus {
  state: ConnectionState | 'replaced' | 'suspended';
  detail: string;
  /** "ws" or "rest" ("" while between). */
  via: 'ws' | 'rest' | '';
  mode: 'auto' | 'ws' | 'rest';
  queued: number;
  sent: number;
  retryInMs?: number;
  error?: HextrackError;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface ConnectDriverOptions extends AuthOptions, BackoffOptions {
  /** "auto" (default): WebSocket, REST after two failed opens, back to WebSocket when it works again. */
  mode?: 'auto' | 'ws' | 'rest';
  /** Keeps the last handled command ID (e.g. localStorage); default: memory. */
  storage?: StorageLike;
  /** The WebSocket constructor (default: the global one). */
  WebSocket?: unknown;
  /** Offline buffer size, pings (default 5000; the oldest are dropped). */
  maxOutbox?: number;
  /** REST upload period of queued pings, ms (default 2000). */
  flushMs?: number;
  /** Commands long-poll wait, s (default 25). */
  waitS?: number;
  /** First WebSocket retry after falling back to REST, ms, doubling up to maxProbeMs (defaults 2500, 15000). */
  probeMs?: number;
  maxProbeMs?: number;
  actionTimeoutMs?: number;
}

export interface DriverChannelEvents {
  /** Each command once; acked after the listeners return, not acked (replayed later) when one throws. */
  command: (cmd: DriverCommand) => void;
  status: (s: DriverStatus) => void;
  /** The highest ping seq the server applied. */
  ack: (seq: number) => void;
  /** Pings the server refused (not resent). */
  rejected: (list: { index: number; reason: string }[]) => void;
  /** The server can't replay commands from our position. */
  reset: (msg: { type: 'reset'; position?: string; data?: unknown }) => void;
  error: (err: HextrackError) => void;
}

export type TripAction = 'accept' | 'decline' | 'arrived' | 'pickup' | 'complete' | 'cancel';

export class DriverChannel implements Listenable<DriverChannelEvents> {
  readonly driverId: string;
  /** Pings acknowledged so far. */
  readonly sent: number;
  /** Pings waiting for an ack (the offline buffer). */
  readonly queued: number;
  readonly closed: boolean;
  on<K extends keyof DriverChannelEvents>(name: K, fn: DriverChannelEvents[K]): () => void;
  off<K extends keyof DriverChannelEvents>(name: K, fn: DriverChannelEvents[K]): void;
  /** Queues a ping and sends it when the channel is up. */
  send(ping: Ping): void;
  /** Sends what is queued now. */
  flush(): void;
  /** A trip action over the socket (REST when it is down); resolves to the trip snapshot. */
  act(action: TripAction, tripId: string, reason?: string): Promise<any>;
  setMode(mode: 'auto' | 'ws' | 'rest'): void;
  /** Stops; queued pings stay queued. */
  close(): void;
}

/** Opens a driver's channel; starts on the next microtask. */
export function connectDriver(driverId: string, opts?: ConnectDriverOptions): DriverChannel;

export interface RequestOptions {
  baseURL?: string;
  method?: string;
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Return the Response itself for 2xx and 304 (ETag polling). */
  raw?: boolean;
  fetch?: typeof fetch;
}

/** One JSON API call; rejects with a HextrackError. */
export function request<T = any>(path: string, opts?: RequestOptions): Promise<T>;

/** Opens one SSE stream and reads it to its end (no reconnect). */
export function openStream(path: string, opts: AuthOptions & {
  signal?: AbortSignal;
  headers?: Record<string, string>;
  idleMs?: number;
  firstByteMs?: number;
  onOpen?: (res: Response) => void;
  onData?: () => void;
  onFrame: (f: { event: string; id: string; data: string }) => void;
}): Promise<void>;

/** Capped exponential backoff with jitter: the delay before retry n. */
export function backoff(n: number, baseMs?: number, capMs?: number): number;
export function sleep(ms: number, signal?: AbortSignal): Promise<void>;
export function randomId(): string;

export class TokenSource {
  constructor(opts?: { token?: string; tokenProvider?: TokenProvider });
  get(): Promise<string>;
  ok(): void;
  /** After a 401 of a request made with token `used`: the fresh token (one refresh however many requests saw it), or an AuthError. */
  rejected(err: HextrackError, used?: string): Promise<string>;
}

/** The JWT's claims, unverified (the server verifies), or null. */
export function decodeToken(token: string): { sub?: string; role?: string; exp?: number; trip?: string; [k: string]: unknown } | null;
/** A token from a dev-mode server; null when the server is not in dev mode. */
export function devToken(role: 'driver' | 'rider' | 'ops' | 'viewer', sub: string, opts?: { baseURL?: string; ttl?: string; trip?: string; fetch?: typeof fetch }): Promise<string | null>;
