/*
 * String.prototype kept in V8's fast mode. A library that subclasses String (ioredis 6's
 * `VerbatimString extends String`, loaded with the fleet's Redis link) makes V8 turn
 * String.prototype into a dictionary, as it does to any object about to become a
 * prototype, and nothing in a proxy's life turns it back: primitive strings never trigger
 * that. From then on every string method call in optimised code (`indexOf`, `substring`,
 * `charCodeAt`, `toLowerCase` ...) is a generic property lookup instead of a direct call.
 * Measured on the proxy under wrk: 28.8 -> 25.9 µs CPU per request once it is fast again.
 *
 * Loads through a String *object* are what V8 answers by marking the prototype chain as
 * one that should be fast, making a dictionary prototype fast again; a prototype so
 * marked is not made a dictionary by a later subclass either. This relies on V8's inline
 * caches, not on an API: test/shared/string-prototype.test.ts checks it on each Node the
 * suite runs on (with V8's %HasFastProperties, in a child process).
 */

function loadThrough(wrapper: object): boolean {
  return typeof (wrapper as { charCodeAt?: unknown }).charCodeAt === 'function';
}

/** Call after the modules that might subclass String are loaded (again after any loaded later does no harm). */
export function keepStringPrototypeFast(): void {
  // An object, not a primitive: V8 acts on loads through objects only.
  const wrapper = new String('');
  // Many loads: a new function's first calls run without inline-cache feedback, and only
  // a load whose cache has seen the receiver once does the marking.
  for (let i = 0; i < 64; i++) loadThrough(wrapper);
}
