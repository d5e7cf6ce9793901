// A tiny event emitter: on(name, fn) returns a function that removes fn.
// A listener that throws is reported to console.error and does not stop
// the others (or the transport that emitted).

export class Emitter {
  constructor() {
    this.listeners = new Map();
  }

  on(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn);
    return () => this.off(name, fn);
  }

  off(name, fn) {
    const set = this.listeners.get(name);
    if (set) set.delete(fn);
  }

  emit(name, ...args) {
    const set = this.listeners.get(name);
    if (!set) return 0;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        console.error(e);
      }
    }
    return set.size;
  }
}
