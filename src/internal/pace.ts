/**
 * @internal
 * Pacing: a background refresh gives the event loop back between its steps.
 *
 * A refresh is a few milliseconds of JavaScript on the thread that also validates tokens: building the request, the
 * HTTP client's own work, reading and decoding the body, importing the keys, the bookkeeping. Run in one go, each half
 * of it (before the request leaves, after the answer comes) holds up every validation that arrives meanwhile by up to
 * its whole length. Nobody waits for a background refresh, so it waits instead: between its steps it sleeps for zero,
 * which on the live clock is a timer, a turn of the event loop in which the requests that arrived are served. Under
 * `TestClock` a zero sleep ends at once, so tests see the same steps in the same order.
 *
 * A fetch that callers wait for (a cold cache, an unknown kid, an expired set) is not paced: its waiters would wait a
 * turn of the event loop more for each step.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"

/** Whether the fetch this fiber runs is paced. Forked fibers inherit it: a fetch runs in a fiber of its own. */
const pacedRef = FiberRef.unsafeMake(false)

/** @internal Runs `effect` paced: each {@link step} in it waits for a turn of the event loop. */
export const paced = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(effect, pacedRef, true)

/** @internal A point between two steps of a fetch: in a paced one, the rest waits for a turn of the event loop. */
export const step: Effect.Effect<void> = Effect.flatMap(
  FiberRef.get(pacedRef),
  (on) => on ? Effect.sleep(Duration.zero) : Effect.void
)
