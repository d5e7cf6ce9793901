// Street names for points (src/lib/places.js): the nearest named street,
// a corner when a second one is close, nothing when none is near.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Streets } from '../src/lib/places.js';
import { offset } from './geo-node.mjs';

const O = { lat: 41.1496, lng: -8.6109 };
const line = (name, a, b) => ({ type: 'Feature', properties: name ? { class: 'residential', name } : { class: 'service' },
  geometry: { type: 'LineString', coordinates: [[a.lng, a.lat], [b.lng, b.lat]] } });
// Rua A runs east from O, Rua B north from O; an unnamed road 20 m south.
const gj = { type: 'FeatureCollection', features: [
  line('Rua A', O, offset(O, 400, 90)),
  line('Rua B', O, offset(O, 400, 0)),
  line('', offset(O, 20, 180), offset(offset(O, 20, 180), 400, 90)),
] };

test('address names the nearest street, a corner, or nothing', () => {
  const s = new Streets(gj);
  const cases = [
    { name: 'on Rua A', p: offset(offset(O, 200, 90), 10, 0), want: 'Rua A' },
    { name: 'on Rua B', p: offset(offset(O, 200, 0), 10, 90), want: 'Rua B' },
    { name: 'at the corner, nearer Rua B', p: offset(O, 10, 30), want: 'Rua B / Rua A' },
    { name: 'near the unnamed road only: Rua A is 60 m away', p: offset(offset(O, 200, 90), 60, 180), want: 'Rua A' },
    { name: 'far from any street', p: offset(O, 1000, 225), want: '' },
  ];
  for (const c of cases) assert.equal(s.address(c.p), c.want, c.name);
});

test('no named roads: no addresses', () => {
  assert.equal(new Streets({ features: [] }).address(O), '');
  assert.equal(new Streets(null).address(O), '');
});
