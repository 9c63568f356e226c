import type { Clock } from '../core/clock.js';
import { nowMs } from '../http1/read-time.js';

/** The proxy's clock: performance.now(), read once per read the engine handles (src/http1/read-time.ts). */
export const wallClock: Clock = { nowMs };
