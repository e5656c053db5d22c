/**
 * The key cache at work, against the fake identity provider on loopback, with a 4-second lifetime so that every
 * event happens within a few seconds: the first load, the background refresh being scheduled, waiting (2 s, half
 * of the lifetime), refreshing and completing, twice; then a key rotation picked up through an unknown `kid`.
 *
 * Run it alone with `npx tsx examples/jwks-cache.ts`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as JwksCache from "../src/JwksCache.js"
import * as JwksSource from "../src/JwksSource.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import * as TokenValidator from "../src/TokenValidator.js"
import { DebugLogs, FakeIdpServer } from "./support.js"

export const program = Effect.gen(function*() {
  const idp = yield* FakeIdp.FakeIdp
  yield* Console.log(`\n== JWKS cache: fake IdP serving ${idp.jwksUri}`)

  const source = yield* JwksSource.http(idp.jwksUri)
  const cache = yield* JwksCache.make(source, {
    strategy: "both",
    interval: "4 seconds",
    usages: 100,
    backgroundRefreshThreshold: 0.5,
    unknownKidThrottle: "1 second"
  })
  const validator = yield* TokenValidator.make(TokenValidator.fromCache(cache), {
    issuer: idp.issuer,
    audience: idp.audience
  })

  // Steady traffic for 5 seconds: the background fiber refreshes at ~2 s and ~4 s, and no validation waits.
  const token = yield* idp.sign({ sub: "alice", preferred_username: "alice" })
  for (let second = 0; second < 5; second++) {
    const [elapsed, principal] = yield* Effect.timed(validator.validate(token))
    yield* Console.log(`t=${second}s validated ${principal.name} in ${elapsed.toString()}`)
    yield* Effect.sleep("1 second")
  }

  // The IdP rotates its signing key: the first token with the new kid triggers one refetch and succeeds.
  const newKid = yield* idp.rotate("replace")
  yield* Console.log(`\n== The IdP rotated its key to ${newKid}`)
  const rotated = yield* idp.sign({ sub: "bob", preferred_username: "bob" })
  const bob = yield* validator.validate(rotated)
  yield* Console.log(`validated ${bob.name} with the new key`)

  const status = yield* cache.status
  yield* Console.log(
    `\n== Cache status: keys [${status.keyIds.join(", ")}], fresh ${status.fresh}, ` +
      `uses left ${status.usesLeft}, ${yield* idp.fetchCount} JWKS fetches in all`
  )
}).pipe(Effect.scoped)

/** The layers this example needs. */
export const ExampleLive = Layer.merge(FakeIdpServer(), DebugLogs)

if (import.meta.url === `file://${process.argv[1]}`) {
  NodeRuntime.runMain(program.pipe(Effect.provide(ExampleLive)))
}
