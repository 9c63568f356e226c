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
 * included: in the check phase of the next turn. By then the upstream client has said
 * whether the read that brought a response head also broke the response (the engine's
 * client says so within that read; a client that learns it from the socket's 'close', as
 * undici did, says so before this turn's end too). One immediate serves every waiter of a
 * turn, so a busy proxy pays no timer per request.
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
