// @hextrack/client: the browser and Node client of a hextrack server —
// trip feeds over SSE, long-poll or ETag polling (watchTrip), the driver
// channel over WebSocket or REST (connectDriver), any other event stream
// (watchStream), the JSON API (request) and typed errors.
export { watchTrip, TripWatch, TRANSPORTS, compareIds, label } from './src/trip.js';
export { connectDriver, DriverChannel } from './src/driver.js';
export { watchStream, StreamWatch } from './src/stream.js';
export { openStream } from './src/sse.js';
export { request, backoff, sleep, randomId } from './src/http.js';
export { TokenSource } from './src/token.js';
export { decodeToken, devToken } from './src/auth.js';
export { HextrackError, AuthError, TripGoneError, isNetwork, isRejected, isMissing, isAbort } from './src/errors.js';
