import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Fiber from "effect/Fiber"
import * as HashSet from "effect/HashSet"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as MemoryAnswers from "../src/internal/memoryAnswers.js"
import * as JwksCache from "../src/JwksCache.js"
import * as JwksSource from "../src/JwksSource.js"
import * as FakeIdp from "../src/testing/FakeIdp.js"
import { TokenValidationError } from "../src/TokenValidationError.js"
import * as TokenValidator from "../src/TokenValidator.js"

/**
 * A validator over a real cache whose keys count their signature checks: the verified-token cache is seen working
 * when a repeated token costs no check. `answers` picks how the validator reaches the cache: `memory` is what
 * `fromCache` gives (keys answered without an effect when the set is fresh), `effects` only `get` and
 * `recordSuccess`, the path of every resolver built outside this library. Each test runs with both.
 */
const setup = (
  answers: "memory" | "effects",
  validator?: Partial<TokenValidator.Options>,
  cache?: JwksCache.Options
) =>
  Effect.gen(function*() {
    const idp = yield* FakeIdp.FakeIdp
    const keys = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { backgroundRefresh: false, ...cache })
    const checks = { count: 0 }
    const counted = new WeakMap<object, TokenValidator.VerificationKey>()
    const count = (key: TokenValidator.VerificationKey) => {
      let wrapped = counted.get(key)
      if (wrapped === undefined) {
        wrapped = {
          verify: (a, data, signature) => {
            checks.count++
            return key.verify(a, data, signature)
          }
        }
        counted.set(key, wrapped)
      }
      return wrapped
    }
    const resolver = TokenValidator.fromCache(keys)
    // Lookups that reach the cache as an effect (one that may wait for a fetch), counted.
    const lookups = { count: 0 }
    const counting: TokenValidator.KeyResolver = {
      recordSuccess: resolver.recordSuccess,
      get: (kid, alg) => Effect.suspend(() => (lookups.count++, Effect.map(resolver.get(kid, alg), Option.map(count))))
    }
    if (answers === "memory") {
      const memory = MemoryAnswers.of(resolver)!
      MemoryAnswers.register(counting, {
        get: (kid, alg, now) => {
          const key = memory.get(kid, alg, now)
          return key === undefined ? undefined : count(key)
        },
        recordSuccess: memory.recordSuccess
      })
    }
    const v = yield* TokenValidator.make(counting, { issuer: idp.issuer, audience: idp.audience, ...validator })
    return { idp, keys, v, checks, lookups }
  })

const decodeClaims = (token: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8"))

const reasonOf = (error: unknown) => error instanceof TokenValidationError ? error.reason : String(error)

describe.each(["memory", "effects"] as const)("TokenValidator verified-token cache (keys from %s)", (answers) => {
  it.scoped("a repeated token skips its signature check and gets an equal Principal", () =>
    Effect.gen(function*() {
      const { checks, idp, v } = yield* setup(answers)
      const token = yield* idp.sign({ sub: "alice" })
      const first = yield* v.validate(token)
      for (let i = 0; i < 10; i++) expect(Equal.equals(yield* v.validate(token), first)).toBe(true)
      expect(checks.count).toBe(1)
      yield* v.validate(yield* idp.sign({ sub: "bob" }))
      expect(checks.count).toBe(2)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("a remembered token's signature on other content finds nothing: that token is checked, and refused", () =>
    Effect.gen(function*() {
      const { checks, idp, v } = yield* setup(answers)
      const token = yield* idp.sign({ sub: "alice" })
      yield* v.validate(token)
      expect(checks.count).toBe(1)
      // The same signature under another payload (sub: admin): looked up by its signature, but not the same token.
      const [header, , signature] = token.split(".")
      const payload = Buffer.from(JSON.stringify({ ...decodeClaims(token), sub: "admin" })).toString("base64url")
      const forged = `${header}.${payload}.${signature}`
      expect(reasonOf(yield* Effect.flip(v.validate(forged)))).toBe("InvalidSignature")
      expect(checks.count).toBe(2)
      // The real token is still remembered, and a copy of it (a new string, as from a request) finds it.
      expect((yield* v.validate(token.split("").join(""))).id).toBe("alice")
      expect(checks.count).toBe(2)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("no caller can change the Principal a later use of the same token gets", () =>
    Effect.gen(function*() {
      const { idp, v } = yield* setup(answers)
      const token = yield* idp.sign({ sub: "alice", groups: ["dev"], scope: "read" })
      const first = yield* v.validate(token)
      // What a handler might do to enrich its request's principal (per-tenant roles, say): refused, not shared.
      expect(() => (first.groups as Array<string>).push("admin")).toThrow(TypeError)
      expect(() => (first.scopes as Array<string>).push("write")).toThrow(TypeError)
      ;(first as { id: string }).id = "root"
      first.expiresAt.setTime(0)
      const second = yield* v.validate(token)
      expect(second.groups).toEqual(["dev"])
      expect(second.scopes).toEqual(["read"])
      expect(second.id).toBe("alice")
      expect(second.expiresAt.getTime()).toBeGreaterThan(0)
      // Still an Effect data value: it hashes and compares by its fields.
      expect(HashSet.size(HashSet.make(first, second, yield* v.validate(token)))).toBe(2)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("tokenCache: 0 checks every signature", () =>
    Effect.gen(function*() {
      const { checks, idp, v } = yield* setup(answers, { tokenCache: 0 })
      const token = yield* idp.sign({})
      for (let i = 0; i < 5; i++) yield* v.validate(token)
      expect(checks.count).toBe(5)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("a remembered token still expires: the time checks run on every use", () =>
    Effect.gen(function*() {
      const { idp, v } = yield* setup(answers)
      const token = yield* idp.sign({}, { expiresIn: "10 minutes" })
      yield* v.validate(token)
      yield* TestClock.adjust("10 minutes")
      expect(reasonOf(yield* Effect.flip(v.validate(token)))).toBe("Expired")
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("a remembered token is refused once its key is no longer served", () =>
    Effect.gen(function*() {
      const { idp, keys, v } = yield* setup(answers, {}, { unknownKidThrottle: "1 hour" })
      const token = yield* idp.sign({})
      yield* v.validate(token)
      yield* idp.rotate("replace")
      yield* keys.refresh
      expect(reasonOf(yield* Effect.flip(v.validate(token)))).toBe("NoMatchingKey")
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("a remembered token whose key is gone is looked up once: one refetch for its kid, not two", () =>
    Effect.gen(function*() {
      const { idp, keys, lookups, v } = yield* setup(answers, {}, { unknownKidThrottle: "0 seconds" })
      const token = yield* idp.sign({})
      yield* v.validate(token)
      yield* idp.rotate("replace")
      yield* keys.refresh
      const [lookupsBefore, fetchesBefore] = [lookups.count, yield* idp.fetchCount]
      expect(reasonOf(yield* Effect.flip(v.validate(token)))).toBe("NoMatchingKey")
      // With no throttle, each lookup of the missing kid would fetch: one lookup, one fetch.
      expect([lookups.count - lookupsBefore, (yield* idp.fetchCount) - fetchesBefore]).toEqual([1, 1])
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("the custom check and the usage count run on every use", () =>
    Effect.gen(function*() {
      let calls = 0
      const { idp, keys, v } = yield* setup(
        answers,
        { check: () => Effect.sync(() => void calls++) },
        { strategy: "usage", usages: 100 }
      )
      const token = yield* idp.sign({})
      for (let i = 0; i < 4; i++) yield* v.validate(token)
      expect(calls).toBe(4)
      expect((yield* keys.status).usesLeft).toBe(96)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("the usage count runs on every use without a custom check too, and a used-up set is reloaded", () =>
    Effect.gen(function*() {
      const { checks, idp, keys, v } = yield* setup(answers, {}, { strategy: "usage", usages: 3 })
      const token = yield* idp.sign({})
      for (let i = 0; i < 3; i++) yield* v.validate(token)
      expect((yield* keys.status).usesLeft).toBe(0)
      expect(yield* idp.fetchCount).toBe(1)
      yield* v.validate(token)
      expect(yield* idp.fetchCount).toBe(2)
      expect((yield* keys.status).usesLeft).toBe(2)
      // The reloaded set publishes the same key, so the remembered token still needs no signature check.
      expect(checks.count).toBe(1)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("a remembered token survives a refresh that publishes its key unchanged", () =>
    Effect.gen(function*() {
      const { checks, idp, keys, v } = yield* setup(answers)
      const token = yield* idp.sign({})
      yield* v.validate(token)
      yield* keys.refresh
      yield* TestClock.adjust("25 minutes") // past the set's lifetime: the next use reloads it
      yield* v.validate(token)
      expect(yield* idp.fetchCount).toBe(3)
      expect(checks.count).toBe(1)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("it holds at most tokenCache entries, forgetting the least recently used", () =>
    Effect.gen(function*() {
      const { checks, idp, v } = yield* setup(answers, { tokenCache: 2 })
      const [a, b, c] = [yield* idp.sign({ sub: "a" }), yield* idp.sign({ sub: "b" }), yield* idp.sign({ sub: "c" })]
      yield* v.validate(a)
      yield* v.validate(b)
      yield* v.validate(a) // a is now the most recent
      yield* v.validate(c) // evicts b
      expect(checks.count).toBe(3)
      yield* v.validate(a)
      yield* v.validate(c)
      expect(checks.count).toBe(3)
      yield* v.validate(b)
      expect(checks.count).toBe(4)
    }).pipe(Effect.provide(FakeIdp.layerTest())))

  it.scoped("a token that failed is never remembered", () =>
    Effect.gen(function*() {
      const { checks, idp, v } = yield* setup(answers)
      const foreign = yield* idp.sign({ aud: "someone-else" })
      for (let i = 0; i < 3; i++) expect(reasonOf(yield* Effect.flip(v.validate(foreign)))).toBe("AudienceMismatch")
      expect(checks.count).toBe(3)
    }).pipe(Effect.provide(FakeIdp.layerTest())))
})

/**
 * Tokens whose signatures end alike, as two real signatures would only by chance, under a key that takes any
 * signature and counts its checks: the verified-token cache files both in one slot.
 */
const slotSharing = () => {
  const checks = { count: 0 }
  const key = Option.some<TokenValidator.VerificationKey>({ verify: () => (checks.count++, true) })
  const tokenOf = (sub: string, kid: string) => {
    const header = Buffer.from(JSON.stringify({ alg: "RS256", kid })).toString("base64url")
    const claims = { iss: "https://idp.example.test", aud: "api", sub, exp: 4_000_000_000 }
    // Signatures that differ only in their first character.
    return `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${sub[0]!.toUpperCase()}b${
      "A".repeat(40)
    }`
  }
  const options = { issuer: "https://idp.example.test", audience: "api" }
  return { checks, key, alice: tokenOf("alice", "k1"), bob: tokenOf("bob", "k2"), options }
}

describe("TokenValidator verified-token cache, tokens filed in one slot", () => {
  it.effect("two tokens whose signatures end alike are each validated as themselves", () =>
    Effect.gen(function*() {
      const { alice, bob, checks, key, options } = slotSharing()
      const v = yield* TokenValidator.make({ get: () => Effect.succeed(key), recordSuccess: Effect.void }, options)
      expect((yield* v.validate(alice)).id).toBe("alice")
      expect((yield* v.validate(alice)).id).toBe("alice")
      expect(checks.count).toBe(1)
      expect((yield* v.validate(bob)).id).toBe("bob")
      expect((yield* v.validate(alice)).id).toBe("alice")
      expect(checks.count).toBe(3)
    }))

  // A remembered use that waits (for its check, or for its key) forgets its own entry when it fails, not the one
  // filed in its slot meanwhile.
  it.effect("a remembered token refused by a check that waited leaves the entry filed in its slot since", () =>
    Effect.gen(function*() {
      const { alice, bob, checks, key, options } = slotSharing()
      const refuseAlice = { now: false }
      const v = yield* TokenValidator.make({ get: () => Effect.succeed(key), recordSuccess: Effect.void }, {
        ...options,
        check: (claims) =>
          claims.sub === "alice" && refuseAlice.now ? Effect.delay(Effect.fail("revoked"), "1 second") : Effect.void
      })
      yield* v.validate(alice)
      refuseAlice.now = true
      const waiting = yield* Effect.fork(Effect.flip(v.validate(alice)))
      yield* Effect.yieldNow()
      expect((yield* v.validate(bob)).id).toBe("bob")
      yield* TestClock.adjust("1 second")
      expect(reasonOf(yield* Fiber.join(waiting))).toBe("CustomCheck")
      expect(checks.count).toBe(2)
      expect((yield* v.validate(bob)).id).toBe("bob")
      expect(checks.count).toBe(2)
    }))

  it.effect("a remembered token whose key was withdrawn as it waited leaves the entry filed in its slot since", () =>
    Effect.gen(function*() {
      const { alice, bob, checks, key, options } = slotSharing()
      const withdrawn = { k1: false, slowNext: false }
      const resolver: TokenValidator.KeyResolver = {
        get: (kid) =>
          Effect.suspend(() => {
            const answer = Effect.sync(() => kid === "k1" && withdrawn.k1 ? Option.none() : key)
            if (!withdrawn.slowNext) return answer
            withdrawn.slowNext = false
            return Effect.delay(answer, "1 second") // a lookup that waits for a fetch
          }),
        recordSuccess: Effect.void
      }
      const v = yield* TokenValidator.make(resolver, options)
      yield* v.validate(alice)
      withdrawn.slowNext = true
      const waiting = yield* Effect.fork(Effect.flip(v.validate(alice)))
      yield* Effect.yieldNow()
      expect((yield* v.validate(bob)).id).toBe("bob")
      withdrawn.k1 = true
      yield* TestClock.adjust("1 second")
      expect(reasonOf(yield* Fiber.join(waiting))).toBe("NoMatchingKey")
      expect((yield* v.validate(bob)).id).toBe("bob")
      expect(checks.count).toBe(2)
    }))
})

describe("TokenValidator verified-token cache, entries forgotten", () => {
  // A token refused on a later use is forgotten: were its entry kept, its next use would skip the signature check
  // whatever happened in between.
  it.effect("a remembered token whose key is withdrawn is verified anew once the key is back", () =>
    Effect.gen(function*() {
      const { alice, checks, key, options } = slotSharing()
      let served = key
      const v = yield* TokenValidator.make(
        { get: () => Effect.sync(() => served), recordSuccess: Effect.void },
        options
      )
      yield* v.validate(alice)
      served = Option.none()
      expect(reasonOf(yield* Effect.flip(v.validate(alice)))).toBe("NoMatchingKey")
      served = key
      expect((yield* v.validate(alice)).id).toBe("alice")
      expect(checks.count).toBe(2)
    }))

  it.effect.each(
    [
      ["answers at once", (refuse: boolean) => refuse ? Effect.fail("revoked") : Effect.void],
      ["runs as an effect", (refuse: boolean) => Effect.suspend(() => refuse ? Effect.fail("revoked") : Effect.void)]
    ] as const
  )(
    "a remembered token refused by a check that %s is verified anew on its next use",
    ([, check]) =>
      Effect.gen(function*() {
        const { alice, checks, key, options } = slotSharing()
        let refuse = false
        const v = yield* TokenValidator.make({ get: () => Effect.succeed(key), recordSuccess: Effect.void }, {
          ...options,
          check: () => check(refuse)
        })
        yield* v.validate(alice)
        refuse = true
        expect(reasonOf(yield* Effect.flip(v.validate(alice)))).toBe("CustomCheck")
        refuse = false
        expect((yield* v.validate(alice)).id).toBe("alice")
        expect(checks.count).toBe(2)
      })
  )
})

describe("TokenValidator over fromCache, a recordSuccess of the app's", () => {
  // The keys are answered from memory while the set is fresh; a usage count of the app's must still hear of each.
  it.scoped("put in place on the resolver, or on a copy of the cache, it hears every validation", () =>
    Effect.gen(function*() {
      const idp = yield* FakeIdp.FakeIdp
      const cache = yield* JwksCache.make(yield* JwksSource.http(idp.jwksUri), { backgroundRefresh: false })
      let recorded = 0
      const counting = Effect.sync(() => void recorded++)
      const resolver = Object.assign(TokenValidator.fromCache(cache), { recordSuccess: counting })
      const copy = { ...cache }
      const overCopy = TokenValidator.fromCache(copy)
      Object.assign(copy, { recordSuccess: counting })
      for (const keys of [resolver, overCopy]) {
        const v = yield* TokenValidator.make(keys, { issuer: idp.issuer, audience: idp.audience })
        yield* v.validate(yield* idp.sign({}))
        yield* v.validate(yield* idp.sign({ sub: "other" }))
      }
      expect(recorded).toBe(4)
      // In place of the cache's own count, which no validation reached.
      expect((yield* cache.status).usesLeft).toBe(1000)
    }).pipe(Effect.provide(FakeIdp.layerTest())))
})
