// Follows a trip's SSE stream with the `eventsource` npm package (a
// third-party EventSource) and prints one JSON line per event, and one per
// (re)open. It relies on EventSource's own reconnection and Last-Event-ID.
//
//   node watch.mjs <events url with access_token> <durable events to wait for>
import { EventSource } from 'eventsource';

const [url, want] = [process.argv[2], Number(process.argv[3])];
const es = new EventSource(url);
let durable = 0;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
es.onopen = () => out({ kind: 'open' });
es.onerror = (e) => out({ kind: 'error', message: String(e?.message ?? '') });
const types = ['snapshot', 'reset', 'trip.created', 'trip.status', 'trip.assigned', 'trip.cancelled',
  'trip.address_changed', 'trip.message', 'trip.location', 'error'];
for (const t of types) {
  es.addEventListener(t, (ev) => {
    out({ kind: 'event', type: t, id: ev.lastEventId, data: ev.data });
    if (t !== 'snapshot' && t !== 'reset' && t !== 'trip.location' && t !== 'error') durable++;
    if (durable >= want) { es.close(); process.exit(0); }
  });
}
setTimeout(() => { out({ kind: 'timeout' }); process.exit(2); }, 90000); // beyond the Go test's own waits
