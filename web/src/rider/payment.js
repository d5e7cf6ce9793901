// Online payment of a delivery: the trip starts awaiting_payment; the rider
// goes to the gateway's checkout page, comes back (?trip=…&payment=…), and
// the page polls GET /v1/payments/{id} with If-None-Match, waiting what
// Retry-After says, until the status is final (no Retry-After). Whether a
// checkout was started is kept in localStorage, so polling resumes after a
// page refresh or a return from the gateway.
import { request, sleep, isNetwork, backoff } from '@hextrack/client';
import { $, setText, notice } from '../lib/ui.js';

const KEY = 'hextrack.rider.payment';
const TEXT = { pending: 'Waiting for the payment…', succeeded: 'Paid', failed: 'Payment failed' };

function stored() {
  try { return JSON.parse(localStorage.getItem(KEY) || 'null'); } catch { return null; }
}

export class Payment {
  constructor(getToken) {
    this.getToken = getToken;
    this.tripId = null;
    this.pay = null;
    this.etag = '';
    this.ctrl = null;
    $('#pay-now').addEventListener('click', () => this.checkout());
  }

  // show is called whenever the trip is (still) awaiting payment. started
  // says the rider came back from the checkout (?payment= in the URL).
  async show(tripId, started) {
    if (this.tripId === tripId && this.pay) return;
    this.tripId = tripId;
    $('#payment-box').hidden = false;
    const st = stored();
    if (started) localStorage.setItem(KEY, JSON.stringify({ trip: tripId, id: started }));
    try {
      // Creating is idempotent: asking again returns the trip's payment.
      this.render(await request(`/v1/trips/${encodeURIComponent(tripId)}/payment`, {
        method: 'POST', token: this.getToken(), body: { return_path: `/?trip=${encodeURIComponent(tripId)}` },
      }));
    } catch (e) {
      notice(`Payment unavailable: ${e.message}`, 'error');
      return;
    }
    if (started || (st && st.trip === tripId)) this.poll();
  }

  // checkout remembers that a checkout started, then leaves for the gateway.
  checkout() {
    if (!this.pay) return;
    localStorage.setItem(KEY, JSON.stringify({ trip: this.tripId, id: this.pay.id }));
    location.assign(this.pay.checkout_url);
  }

  render(p) {
    if (!p || (this.pay && p.version < this.pay.version)) return;
    this.pay = p;
    const box = $('#payment-box');
    box.hidden = false;
    box.dataset.status = p.status;
    setText('#payment-amount', `${(p.amount / 100).toFixed(2)} ${p.currency}`);
    setText('#payment-status', TEXT[p.status] || p.status);
    $('#pay-now').hidden = p.status !== 'pending' || this.ctrl !== null;
    if (p.status !== 'pending') {
      const st = stored();
      if (st && st.trip === p.trip_id) localStorage.removeItem(KEY);
      if (this.ctrl) this.ctrl.abort();
      this.ctrl = null;
    }
  }

  // onEvent takes payment.status from the trip's feed.
  onEvent(d) {
    if (this.pay && d.payment_id === this.pay.id) this.render({ ...this.pay, status: d.status, version: d.version });
  }

  // poll asks until the payment is final, as Retry-After says.
  async poll() {
    if (this.ctrl || !this.pay) return;
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    $('#pay-now').hidden = true;
    setText('#payment-poll', 'Checking the payment status…');
    let fails = 0;
    try {
      while (!ctrl.signal.aborted) {
        let wait;
        try {
          const headers = this.etag ? { 'If-None-Match': this.etag } : {};
          const res = await request(`/v1/payments/${encodeURIComponent(this.pay.id)}`, { token: this.getToken(), headers, raw: true, signal: ctrl.signal });
          fails = 0;
          if (res.status === 200) {
            this.etag = res.headers.get('ETag') || '';
            const p = await res.json();
            const ra = res.headers.get('Retry-After');
            if (this.ctrl === ctrl) this.ctrl = ra ? ctrl : null;
            this.render(p);
            if (!ra) break;
            wait = Number(ra) * 1000;
          } else {
            const ra = res.headers.get('Retry-After');
            if (!ra) break; // 304 of a final payment: we have it
            wait = Number(ra) * 1000;
          }
        } catch (e) {
          if (e && e.name === 'AbortError') return;
          if (!isNetwork(e) && e.status !== 503) throw e;
          wait = backoff(fails++);
        }
        setText('#payment-poll', `Checking again in ${Math.round(wait / 1000)} s`);
        await sleep(wait, ctrl.signal);
      }
      setText('#payment-poll', '');
    } catch (e) {
      if (!(e && e.name === 'AbortError')) notice(`Payment status unavailable: ${e.message}`, 'error');
    } finally {
      if (this.ctrl === ctrl) this.ctrl = null;
    }
  }

  hide() {
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
    this.pay = null;
    this.tripId = null;
    this.etag = '';
    $('#payment-box').hidden = true;
  }
}
