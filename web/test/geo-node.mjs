// Node-side copy of the one geometry helper the tests need.
export { offset } from '../src/lib/geo.js';
