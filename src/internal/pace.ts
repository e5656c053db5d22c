/**
 * @internal
 * Pacing: a background refresh gives the event loop back between its steps.
 *
 * A refresh is a few milliseconds of JavaScript on the thread that also validates tokens: building the request, the
 * HTTP client's own work, reading and decoding the body, importing the keys, the bookkeeping. Run in one go, each half
 * of it (before the request leaves, after the answer comes) holds up every validation that arrives meanwhile by up to
 * its whole length. While nobody waits for a refresh, it waits instead: between its steps it sleeps for zero, which on
 * the live clock is a timer, a turn of the event loop in which the requests that arrived are served. Under `TestClock`
 * a zero sleep ends at once, so tests see the same steps in the same order.
 *
 * A caller that joins the fetch (a request that found the set expired, an unknown kid, `refresh`) turns its pacing
 * off for the steps left: it would wait a turn of the event loop more for each.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"

/** @internal One fetch's pacing: on while nobody waits for the fetch; `stopped` ends a step under way. */
export interface Pace {
  on: boolean
  readonly stopped: Deferred.Deferred<void>
}

/** The pacing of every fetch that starts unpaced: nothing to stop, so one cell serves them all. */
const off: Pace = { on: false, stopped: Deferred.unsafeMake(FiberId.none) }

/** @internal */
export const make = (on: boolean): Pace => on ? { on, stopped: Deferred.unsafeMake(FiberId.none) } : off

/** The pacing of the fetch this fiber runs. A fetch runs in a fiber of its own, which inherits it (the same cell). */
const currentPace = FiberRef.unsafeMake<Pace | undefined>(undefined)

/** @internal Runs `effect` with `pace`: each {@link step} in it waits for a turn of the event loop while it is on. */
export const within = <A, E, R>(pace: Pace, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(effect, currentPace, pace)

/** @internal Someone waits for the fetch: the step under way ends now, and the steps left run in one go. */
export const stop = (pace: Pace): Effect.Effect<void> =>
  Effect.suspend(() => {
    pace.on = false
    return Effect.asVoid(Deferred.succeed(pace.stopped, void 0))
  })

/**
 * @internal
 * A point between two steps of a fetch: while its pacing is on, the rest waits for a turn of the event loop.
 */
export const step: Effect.Effect<void> = Effect.flatMap(
  FiberRef.get(currentPace),
  (pace) => pace?.on === true ? Effect.race(Effect.sleep(Duration.zero), Deferred.await(pace.stopped)) : Effect.void
)
