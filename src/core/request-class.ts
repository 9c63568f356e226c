/**
 * A request's class for the learning policies: what kind of work it asks of a backend, as a
 * small integer a model can index an array with (no strings, no allocation per request).
 * Route slots times body buckets: requests to different routes, or with bodies of very
 * different sizes, tend to cost different amounts of backend time.
 */

/** Routes kept apart; route indexes past the last share its slot. */
export const ROUTE_SLOTS = 8;
/** No body (GET, HEAD, ... without one); up to 16 KiB; up to 1 MiB; larger, or of unknown length (chunked). */
export const BODY_BUCKETS = 4;
export const REQUEST_CLASSES = ROUTE_SLOTS * BODY_BUCKETS;

const SMALL_BODY = 16 * 1024;
const MEDIUM_BODY = 1024 * 1024;

/**
 * The class of a request to route `routeIndex` with a body of `bodyBytes` (0: none;
 * -1: a body of unknown length). The method matters through its body: a POST with none
 * costs what a GET does far more often than what a POST with a large one does.
 */
export function requestClass(routeIndex: number, bodyBytes: number): number {
  const slot = routeIndex < ROUTE_SLOTS - 1 ? Math.max(0, routeIndex | 0) : ROUTE_SLOTS - 1;
  const bucket = bodyBytes === 0 ? 0 : bodyBytes < 0 ? 3 : bodyBytes <= SMALL_BODY ? 1 : bodyBytes <= MEDIUM_BODY ? 2 : 3;
  return slot * BODY_BUCKETS + bucket;
}
