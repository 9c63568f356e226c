/** Something to call back once the event-loop turn it was registered in has ended. */
export interface TurnEndWaiter {
  turnEnded(): void;
}

// Registered in this turn / registered in the turn before, due at this turn's check phase.
let arrived: TurnEndWaiter[] = [];
let due: TurnEndWaiter[] = [];
let armed = false;

/**
 * Call `w.turnEnded()` once the current event-loop turn has ended, its close callbacks
 * included: in the check phase of the next turn. That is the first moment at which undici
 * has told a request that its connection broke in this turn: a parse error found while
 * reading an upstream's bytes destroys the socket, and undici fails the request from the
 * socket's 'close', which libuv runs after this turn's check phase. One immediate serves
 * every waiter of a turn, so a busy proxy pays no timer per request.
 */
export function afterTurn(w: TurnEndWaiter): void {
  arrived.push(w);
  if (!armed) {
    armed = true;
    setImmediate(onCheck);
  }
}

function onCheck(): void {
  const now = due;
  // An immediate set from inside an immediate runs in the next turn's check phase.
  due = arrived;
  arrived = [];
  armed = due.length > 0;
  if (armed) setImmediate(onCheck);
  for (const w of now) w.turnEnded();
}
