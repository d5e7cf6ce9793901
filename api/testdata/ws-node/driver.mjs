// A driver app written against the npm "ws" package (a third-party
// WebSocket client), run by the Go end-to-end test: it connects with the
// token in the query, says hello, sends a batch of pings, waits for their
// ack, reports it, then waits for an offer, acks it and reports it.
// Each report is one JSON line on stdout.
import WebSocket from 'ws';

const [url, token, lat, lng] = process.argv.slice(2);
const ws = new WebSocket(`${url}?access_token=${encodeURIComponent(token)}`);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const timer = setTimeout(() => { out({ event: 'timeout' }); process.exit(2); }, 20000);

ws.on('open', () => {
  ws.send(JSON.stringify({ type: 'hello' }));
  const now = Date.now();
  const pings = [0, 1, 2].map((i) => ({
    lat: Number(lat) + i * 0.0001, lng: Number(lng), ts: now - (3 - i) * 1000, seq: i + 1,
  }));
  ws.send(JSON.stringify({ type: 'locations', ref: 'l1', pings }));
});

ws.on('message', (raw) => {
  const m = JSON.parse(raw.toString());
  if (m.type === 'ack' && m.ref === 'l1') {
    out({ event: 'acked', seq: m.seq, accepted: m.accepted });
  } else if (m.type === 'offer') {
    out({ event: 'offer', id: m.id, trip: m.data.trip_id });
    ws.send(JSON.stringify({ type: 'ack', id: m.id, ref: 'c1' }));
  } else if (m.type === 'acked' && m.ref === 'c1') {
    out({ event: 'command_acked', id: m.id });
    clearTimeout(timer);
    ws.close(1000, 'done');
  } else if (m.type === 'error') {
    out({ event: 'error', code: m.code, message: m.message });
  }
});

ws.on('close', (code) => { out({ event: 'closed', code }); process.exit(0); });
ws.on('error', (err) => { out({ event: 'socket_error', message: String(err) }); process.exit(1); });
