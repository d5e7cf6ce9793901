// A vehicle marker that glides between GPS fixes instead of jumping:
// each new fix starts an animation from where the marker is drawn now to
// the fix, lasting about as long as the gap between fixes, and the arrow
// turns to the fix's heading (or the direction of travel).
import { L, vehicleIcon, rotate } from './map.js';
import { bearing, distance, lerp, lerpAngle } from './geo.js';

export class MovingMarker {
  constructor(map, pos, opts = {}) {
    this.map = map;
    this.pos = { lat: pos.lat, lng: pos.lng };
    // No heading yet (none sent, no movement seen): a dot, not an arrow
    // pointing north by default.
    const h = Number(pos.heading);
    this.heading = Number.isFinite(h) && h >= 0 ? h : null;
    this.marker = L.marker([pos.lat, pos.lng], { icon: vehicleIcon(opts.cls || ''), keyboard: false, title: opts.title || 'Driver', zIndexOffset: 500 }).addTo(map);
    this.lastFixAt = performance.now();
    this.frames = 0;
    this.showHeading();
  }

  // update starts gliding to fix {lat,lng,heading?}.
  update(fix) {
    const now = performance.now();
    const gap = Math.min(3000, Math.max(300, now - this.lastFixAt));
    this.lastFixAt = now;
    const to = { lat: Number(fix.lat), lng: Number(fix.lng) };
    if (!Number.isFinite(to.lat) || !Number.isFinite(to.lng)) return;
    let h = Number(fix.heading);
    if (!Number.isFinite(h) || h < 0) {
      h = distance(this.pos, to) > 2 ? bearing(this.pos, to) : this.heading;
    }
    if (this.heading === null && h !== null) this.heading = h;
    // A jump of more than ~1 km is a new position, not a movement.
    if (distance(this.pos, to) > 1000) {
      this.set(to, h);
      return;
    }
    this.from = { ...this.pos };
    this.fromHeading = this.heading;
    this.to = to;
    this.toHeading = h;
    this.t0 = now;
    this.dur = gap;
    if (!this.raf) this.raf = requestAnimationFrame((t) => this.step(t));
  }

  step(t) {
    this.raf = 0;
    if (!this.to) return;
    const k = Math.min(1, (t - this.t0) / this.dur);
    const e = k < 0.5 ? 2 * k * k : 1 - (-2 * k + 2) ** 2 / 2;
    this.pos = lerp(this.from, this.to, e);
    if (this.toHeading !== null) this.heading = lerpAngle(this.fromHeading ?? this.toHeading, this.toHeading, Math.min(1, k * 3));
    this.marker.setLatLng([this.pos.lat, this.pos.lng]);
    this.showHeading();
    this.frames++;
    if (k < 1) this.raf = requestAnimationFrame((tt) => this.step(tt));
    else this.to = null;
  }

  set(p, heading) {
    this.to = null;
    this.pos = { lat: p.lat, lng: p.lng };
    if (Number.isFinite(heading)) this.heading = heading;
    this.marker.setLatLng([p.lat, p.lng]);
    this.showHeading();
  }

  // showHeading turns the arrow to the heading, or shows a dot while the
  // heading is unknown.
  showHeading() {
    const el = this.marker.getElement();
    if (el) el.classList.toggle('no-heading', this.heading === null);
    if (this.heading !== null) rotate(this.marker, this.heading);
  }

  remove() {
    if (this.raf) cancelAnimationFrame(this.raf);
    this.marker.remove();
  }
}
