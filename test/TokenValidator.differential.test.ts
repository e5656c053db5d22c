/**
 * The verified-token cache only saves work: a validator with it (`tokenCache` small, so that it evicts, and the
 * default) answers every validation of any sequence of operations as one without it (`tokenCache: 0`) does. The
 * operations: validations (the same string or a new copy), clock moves either way across `exp` / `nbf` / `iat` and the
 * leeway, the throttle, the set's lifetime and `maxStale`; key sets published (withdrawn keys, new material under a
 * kid, kid-less keys, a kid two keys share), refreshes, an unreachable or slow source; a custom check switched
 * (refusing, throwing, dying, at once or after a wait); a resolver's key that takes any signature (tokens that share a
 * slot); and concurrent validations with changes made while they wait, some interrupted.
 *
 * Each validator has its own JwksCache over one shared source, and every operation reaches all of them before the
 * next. `TOKEN_CACHE_RUNS` sets the number of sequences per property (25 here; 100 took about 40 s each).
 */
import { describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import { exportJWK, generateKeyPair, SignJWT } from "jose"
import type { KeyObject } from "node:crypto"
import * as CacheStrategy from "../src/CacheStrategy.js"
import * as JwksCache from "../src/JwksCache.js"
import { JwksError } from "../src/JwksError.js"
import * as JwksSource from "../src/JwksSource.js"
import { Principal } from "../src/Principal.js"
import type { TokenValidationError } from "../src/TokenValidationError.js"
import * as TokenValidator from "../src/TokenValidator.js"

const issuer = "https://idp.diff.test"
const audience = "diff-api"

// ---------------------------------------------------------------------------------------------------------------------
// Keys (generated once)

type Pair = { readonly privateKey: KeyObject; readonly jwk: Record<string, unknown> }
const pair = async (alg: "RS256" | "ES256"): Promise<Pair> => {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { privateKey: privateKey as unknown as KeyObject, jwk: await exportJWK(publicKey) }
}
const rsaA = await pair("RS256")
const rsaB = await pair("RS256")
const ecC = await pair("ES256")

/** The published JWKs, by name. "k1" is under kid k1 (material A); "k1b" is kid k1 with material B (same-kid rotation). */
const jwkOf = {
  k1: { ...rsaA.jwk, kid: "k1", alg: "RS256", use: "sig" },
  k1b: { ...rsaB.jwk, kid: "k1", alg: "RS256", use: "sig" },
  k2: { ...rsaB.jwk, kid: "k2", alg: "RS256", use: "sig" },
  k3: { ...ecC.jwk, kid: "k3", alg: "ES256", use: "sig" },
  // kid-less: tokens without kid select it only while it is the one RS256 key (others with kids count too)
  nokid: { ...rsaA.jwk, alg: "RS256", use: "sig" }
} as const
type JwkName = keyof typeof jwkOf

/** Named sets the source can publish. */
const sets: Record<string, ReadonlyArray<JwkName>> = {
  initial: ["k1", "k2", "k3"],
  withoutK2: ["k1", "k3"],
  withoutK1: ["k2", "k3"],
  sameKidNewMaterial: ["k1b", "k2", "k3"],
  reordered: ["k3", "k2", "k1"],
  onlyK1: ["k1"],
  nokid: ["nokid"],
  nokidAndK3: ["nokid", "k3"],
  sharedKid: ["k1", "k1b", "k3"]
}
const setNames = Object.keys(sets)

// ---------------------------------------------------------------------------------------------------------------------
// Tokens

const sign = (p: Pair, alg: string, header: Record<string, unknown>, claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg, ...header }).sign(p.privateKey)

const b64 = (s: string) => Buffer.from(s).toString("base64url")

interface Pool {
  readonly tokens: ReadonlyArray<string>
  readonly names: ReadonlyArray<string>
}

/** The token pool, relative to `t0` (seconds). */
const makePool = async (t0: number): Promise<Pool> => {
  const base = (extra: Record<string, unknown>) => ({ iss: issuer, aud: audience, iat: t0, exp: t0 + 3600, ...extra })
  const entries: Array<[string, Promise<string> | string]> = [
    ["alice-k1", sign(rsaA, "RS256", { kid: "k1" }, base({ sub: "alice", scope: "read", groups: ["g"] }))],
    ["bob-k1", sign(rsaA, "RS256", { kid: "k1" }, base({ sub: "bob" }))],
    ["carol-k2", sign(rsaB, "RS256", { kid: "k2" }, base({ sub: "carol", email: "c@x" }))],
    ["bob-k3-es", sign(ecC, "ES256", { kid: "k3" }, base({ sub: "bob", client_id: "cli" }))],
    ["alice-exp30", sign(rsaA, "RS256", { kid: "k1" }, base({ sub: "alice", exp: t0 + 30 }))],
    ["alice-exp90.5", sign(rsaA, "RS256", { kid: "k1" }, base({ sub: "alice", exp: t0 + 90.5 }))],
    ["carol-nbf20", sign(rsaB, "RS256", { kid: "k2" }, base({ sub: "carol", nbf: t0 + 20 }))],
    ["alice-iat40", sign(rsaA, "RS256", { kid: "k1" }, base({ sub: "alice", iat: t0 + 40 }))],
    ["bob-exp400", sign(ecC, "ES256", { kid: "k3" }, base({ sub: "bob", exp: t0 + 400 }))],
    ["alice-nokid", sign(rsaA, "RS256", {}, base({ sub: "alice" }))],
    ["alice-k1-matB", sign(rsaB, "RS256", { kid: "k1" }, base({ sub: "alice", scope: "b" }))],
    ["alice-unknownkid", sign(rsaA, "RS256", { kid: "kx" }, base({ sub: "alice" }))],
    ["bob-wrongaud", sign(rsaA, "RS256", { kid: "k1" }, base({ sub: "bob", aud: "other" }))],
    ["bob-refresh", sign(rsaA, "RS256", { kid: "k1" }, base({ sub: "bob", token_use: "refresh" }))]
  ]
  const tokens = await Promise.all(entries.map(([, t]) => t))
  const names = entries.map(([n]) => n)
  const all = [...tokens]
  const allNames = [...names]
  // Forged: alice-k1's signature on another payload (shares alice-k1's slot: its last 24 characters).
  const [h, , s] = tokens[0]!.split(".")
  all.push(`${h}.${b64(JSON.stringify(base({ sub: "mallory" })))}.${s}`)
  allNames.push("forged-mallory-slot-alice")
  // Forged: bob-k1's payload under k2's header with k1's signature.
  const [, pb, sb] = tokens[1]!.split(".")
  all.push(`${b64(JSON.stringify({ alg: "RS256", kid: "k2" }))}.${pb}.${sb}`)
  allNames.push("forged-bob-as-k2")
  // alg RS384 (not allowed): alice-k1's payload and signature under another header.
  const [, pa] = tokens[0]!.split(".")
  all.push(`${b64(JSON.stringify({ alg: "RS384", kid: "k1" }))}.${pa}.${s}`)
  allNames.push("alice-rs384")
  // Tokens under the "any" key (a resolver's key that accepts any signature), all sharing one signature.
  const anyHeader = b64(JSON.stringify({ alg: "RS256", kid: "any" }))
  const sig = b64("the same twenty-four-plus characters of signature!")
  for (
    const [name, claims] of [
      ["any-alice", base({ sub: "alice" })],
      ["any-bob", base({ sub: "bob" })],
      ["any-alice-exp60", base({ sub: "alice", exp: t0 + 60 })],
      ["any-carol-nbf45", base({ sub: "carol", nbf: t0 + 45 })]
    ] as const
  ) {
    all.push(`${anyHeader}.${b64(JSON.stringify(claims))}.${sig}`)
    allNames.push(name)
  }
  return { tokens: all, names: allNames }
}

// ---------------------------------------------------------------------------------------------------------------------
// Operations

type CheckMode =
  | "none"
  | "syncRefuseBob"
  | "asyncRefuseBob"
  | "asyncAccept"
  | "syncRefuseAlice"
  | "throwForCarol"
  | "asyncDieForCarol"
  | "asyncRefuseBobSlow"
type AnyKeyMode = "absent" | "keyA" | "keyB" | "keyIssuerOther"

type Op =
  | { readonly _tag: "validate"; readonly token: number; readonly fresh: boolean }
  | { readonly _tag: "advance"; readonly ms: number }
  | { readonly _tag: "publish"; readonly set: string; readonly refresh: boolean }
  | { readonly _tag: "sourceDown"; readonly down: boolean }
  | { readonly _tag: "refresh" }
  | { readonly _tag: "check"; readonly mode: CheckMode }
  | { readonly _tag: "anyKey"; readonly mode: AnyKeyMode }
  | { readonly _tag: "latency"; readonly ms: number }
  | { readonly _tag: "stepBack"; readonly ms: number }
  | {
    readonly _tag: "concurrent"
    readonly tokens: ReadonlyArray<number>
    readonly ms: number
    /** Between the forks and the clock move: a new set published (and refreshed), and/or the check changed. */
    readonly publish: string | undefined
    readonly refresh: boolean
    readonly check: CheckMode | undefined
    /** Interrupt what is still running after the first move, instead of finishing it. */
    readonly interrupt: boolean
  }

const TOKENS = 21
const advances = [
  1,
  499,
  999,
  1000,
  1001,
  5_000,
  10_000,
  14_999,
  15_000,
  20_000,
  29_999,
  30_000,
  30_001,
  45_000,
  60_000,
  90_000,
  119_999,
  120_000,
  300_000,
  600_000
]
const checkModes: ReadonlyArray<CheckMode> = [
  "none",
  "syncRefuseBob",
  "asyncRefuseBob",
  "asyncAccept",
  "syncRefuseAlice",
  "throwForCarol",
  "asyncDieForCarol",
  "asyncRefuseBobSlow"
]
// Mostly the tokens that can succeed (so that the cache has something to remember), sometimes any.
const tokenArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8, 9) },
  { weight: 1, arbitrary: fc.nat({ max: TOKENS - 1 }) }
)
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      _tag: fc.constant("validate" as const),
      token: tokenArb,
      fresh: fc.boolean()
    })
  },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("advance" as const), ms: fc.constantFrom(...advances) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      _tag: fc.constant("publish" as const),
      set: fc.constantFrom(...setNames),
      refresh: fc.boolean()
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("sourceDown" as const), down: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("refresh" as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      _tag: fc.constant("check" as const),
      mode: fc.constantFrom<CheckMode>(...checkModes)
    })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      _tag: fc.constant("anyKey" as const),
      mode: fc.constantFrom<AnyKeyMode>("absent", "keyA", "keyB", "keyIssuerOther")
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({
      _tag: fc.constant("concurrent" as const),
      tokens: fc.array(tokenArb, { minLength: 1, maxLength: 5 }),
      ms: fc.constantFrom(0, 500, 1000, 1500, 3000, 30_000),
      publish: fc.option(fc.constantFrom(...setNames), { nil: undefined }),
      refresh: fc.boolean(),
      check: fc.option(fc.constantFrom(...checkModes), { nil: undefined }),
      interrupt: fc.boolean()
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("latency" as const), ms: fc.constantFrom(0, 0, 800, 2500) }) },
  {
    weight: 1,
    arbitrary: fc.record({ _tag: fc.constant("stepBack" as const), ms: fc.constantFrom(1000, 6000, 60_000) })
  }
)

// ---------------------------------------------------------------------------------------------------------------------
// Outcomes

const normalize = (exit: Exit.Exit<Principal, TokenValidationError | JwksError>): unknown => {
  if (Exit.isSuccess(exit)) {
    const p = exit.value
    return {
      ok: true,
      isPrincipal: p instanceof Principal,
      id: p.id,
      name: p.name,
      email: p.email,
      groups: [...p.groups],
      scopes: [...p.scopes],
      tokenType: p.tokenType,
      clientId: p.clientId,
      isMachine: p.isMachine,
      issuer: p.issuer,
      expiresAt: p.expiresAt.getTime(),
      claims: JSON.stringify(p.claims)
    }
  }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const e = failure.value
    return { ok: false, tag: e._tag, reason: e.reason }
  }
  return { ok: false, cause: Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect" }
}

// ---------------------------------------------------------------------------------------------------------------------
// The harness

const checkDelay = "2 seconds"

/** Runs one sequence; returns the log of outcomes and the first difference, if any. */
const runSequence = (
  ops: ReadonlyArray<Op>,
  sizes: ReadonlyArray<number>,
  viaResolver: boolean,
  via: "effect" | "promise" = "effect",
  cacheKind: CacheKind = "both"
) =>
  Effect.scoped(Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const t0 = yield* Effect.clockWith((c) => c.currentTimeMillis)
    const pool = yield* Effect.promise(() => makePool(Math.floor(t0 / 1000)))
    // The shared, mutable source.
    let published: ReadonlyArray<JwkName> = sets.initial!
    let down = false
    let latency = 0
    /** How far the clock was stepped back so far, in all. */
    let steppedBack = 0
    let checkMode: CheckMode = "none"
    const anyKeys = {
      keyA: { verify: () => true },
      keyB: { verify: () => true },
      keyIssuerOther: { verify: () => true, issuer: "https://other.test" }
    } satisfies Record<string, TokenValidator.VerificationKey>
    let anyKey: TokenValidator.VerificationKey | undefined = anyKeys.keyA
    const source = JwksSource.make(
      "diff",
      Effect.suspend(() => {
        // What the source answers is decided when the request arrives, its answer comes `latency` later.
        const answer = down
          ? Effect.fail(new JwksError({ reason: "Unreachable", source: "diff", description: "down" }))
          : Effect.succeed({ keys: published.map((name) => jwkOf[name]) })
        return latency === 0 ? answer : Effect.delay(answer, latency)
      })
    )
    const check = (claims: { readonly sub?: unknown }) => {
      switch (checkMode) {
        case "none":
          return Effect.void
        case "syncRefuseBob":
          return claims.sub === "bob" ? Effect.fail("bob refused") : Effect.void
        case "syncRefuseAlice":
          return claims.sub === "alice" ? Effect.fail("alice refused") : Effect.void
        case "asyncRefuseBob":
          return Effect.delay(claims.sub === "bob" ? Effect.fail("bob refused later") : Effect.void, checkDelay)
        case "asyncAccept":
          return Effect.delay(Effect.void, checkDelay)
        case "throwForCarol":
          if (claims.sub === "carol") throw new Error("check bug")
          return Effect.void
        case "asyncDieForCarol":
          return Effect.delay(claims.sub === "carol" ? Effect.dieMessage("check died") : Effect.void, "1 second")
        case "asyncRefuseBobSlow":
          return Effect.delay(claims.sub === "bob" ? Effect.fail("bob refused later") : Effect.void, "5 seconds")
      }
    }
    const caches: Array<JwksCache.Service> = []
    const validators: Array<TokenValidator.Service> = []
    for (const size of sizes) {
      const cache = yield* JwksCache.make(source, {
        backgroundRefresh: cacheKind === "background",
        backgroundRefreshJitter: 0,
        strategy: cacheKind === "time" ? "time" : "both",
        ...(cacheKind === "custom"
          ? {
            cacheStrategy: CacheStrategy.fromSchedule(
              Schedule.intersect(Schedule.upTo(Schedule.forever, "2 minutes"), Schedule.recurs(7)),
              { interval: "2 minutes" }
            )
          }
          : {}),
        interval: "2 minutes",
        usages: 6,
        maxStale: "3 minutes",
        unknownKidThrottle: "30 seconds",
        retry: Schedule.spaced("10 seconds")
      })
      caches.push(cache)
      const base = TokenValidator.fromCache(cache)
      const keys: TokenValidator.KeyResolver = viaResolver
        ? {
          ...base,
          get: (kid, alg) => kid === "any" ? Effect.sync(() => Option.fromNullable(anyKey)) : base.get(kid, alg)
        }
        : base
      validators.push(
        yield* TokenValidator.make(keys, {
          issuer,
          audience,
          algorithms: ["RS256", "ES256"],
          leeway: "5 seconds",
          tokenCache: size,
          check: (claims) => check(claims)
        })
      )
    }
    const calls = validators.map((v) => {
      if (via === "effect") return (token: string) => v.validate(token)
      const p = TokenValidator.toPromise(runtime)(v)
      return (token: string) => Effect.tryPromise({ try: () => p(token), catch: (e) => e as TokenValidationError })
    })
    const log: Array<string> = []
    const compare = (what: string, outcomes: ReadonlyArray<unknown>) => {
      const shown = outcomes.map((o) => JSON.stringify(o))
      log.push(`${what}: ${shown[0]}`)
      for (let i = 1; i < shown.length; i++) {
        if (shown[i] !== shown[0]) {
          return `${what}: tokenCache=${sizes[0]} gave ${shown[0]} but tokenCache=${sizes[i]} gave ${shown[i]}`
        }
      }
      return undefined
    }
    /**
     * Runs one effect per validator (or cache) at once and finishes them all, moving the clock as they need it, the
     * same for all: by 0, then by half a second at a time while any still runs (a fetch's latency, an async check).
     * TestClock delays a sleep begun before it was stepped back by the step (a real timer runs on regardless): a
     * fetch under way then, which a later call joins, needs that much longer.
     */
    const finishAll = <A, E>(fibers: ReadonlyArray<Fiber.RuntimeFiber<Exit.Exit<A, E>>>) =>
      Effect.gen(function*() {
        yield* TestClock.adjust(0)
        for (let i = 0; i < 40 + Math.ceil(steppedBack / 500); i++) {
          let pending = false
          for (const f of fibers) if (Option.isNone(yield* Fiber.poll(f))) pending = true
          if (!pending) break
          yield* TestClock.adjust(500)
        }
        const exits: Array<Exit.Exit<A, E>> = []
        for (const f of fibers) {
          const polled = yield* Fiber.poll(f)
          if (Option.isNone(polled)) throw new Error("a fiber never finished")
          exits.push(Exit.flatten(polled.value))
        }
        return exits
      })
    const refreshAll = (what: string) =>
      Effect.gen(function*() {
        const fibers = []
        for (const c of caches) fibers.push(yield* Effect.fork(Effect.exit(c.refresh)))
        const exits = yield* finishAll(fibers)
        return compare(what, exits.map(refreshOutcome))
      })
    for (const [index, op] of ops.entries()) {
      let diff: string | undefined
      switch (op._tag) {
        case "validate": {
          const fibers = []
          for (const v of calls) {
            const token = op.fresh ? pool.tokens[op.token]!.split("").join("") : pool.tokens[op.token]!
            fibers.push(yield* Effect.fork(Effect.exit(v(token))))
          }
          const exits = yield* finishAll(fibers)
          diff = compare(
            `#${index} validate ${pool.names[op.token]}${op.fresh ? " (new string)" : ""}`,
            exits.map(normalize)
          )
          break
        }
        case "advance":
          yield* TestClock.adjust(op.ms)
          break
        case "stepBack": {
          const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
          yield* TestClock.setTime(now - op.ms)
          steppedBack += op.ms
          break
        }
        case "latency":
          latency = op.ms
          break
        case "publish":
          published = sets[op.set]!
          if (op.refresh) diff = yield* refreshAll(`#${index} publish ${op.set} + refresh`)
          break
        case "sourceDown":
          down = op.down
          break
        case "refresh":
          diff = yield* refreshAll(`#${index} refresh`)
          break
        case "check":
          checkMode = op.mode
          break
        case "anyKey":
          anyKey = op.mode === "absent" ? undefined : anyKeys[op.mode]
          break
        case "concurrent": {
          const fibers: Array<Array<Fiber.RuntimeFiber<Exit.Exit<Principal, TokenValidationError | JwksError>>>> = []
          for (const v of calls) {
            const mine = []
            for (const t of op.tokens) mine.push(yield* Effect.fork(Effect.exit(v(pool.tokens[t]!))))
            fibers.push(mine)
          }
          yield* TestClock.adjust(0)
          if (op.check !== undefined) checkMode = op.check
          const refreshes = []
          if (op.publish !== undefined) {
            published = sets[op.publish]!
            if (op.refresh) { for (const c of caches) refreshes.push(yield* Effect.fork(Effect.exit(c.refresh))) }
          }
          yield* TestClock.adjust(op.ms)
          if (op.interrupt) { for (const mine of fibers) for (const f of mine) yield* Fiber.interrupt(f) }
          const exits = yield* finishAll(fibers.flat())
          const refreshExits = yield* finishAll(refreshes)
          const n = op.tokens.length
          const perValidator = validators.map((_, i) => exits.slice(i * n, i * n + n).map(normalize))
          const what = `#${index} concurrent [${op.tokens.map((t) => pool.names[t]).join(", ")}]${
            op.check === undefined ? "" : ` check->${op.check}`
          }${op.publish === undefined ? "" : ` publish ${op.publish}${op.refresh ? " + refresh" : ""}`} +${op.ms}ms${
            op.interrupt ? " then interrupt" : ""
          }`
          diff = compare(what, perValidator)
          if (diff === undefined && refreshes.length > 0) {
            diff = compare(`${what} (its refreshes)`, validators.map((_, i) => refreshOutcome(refreshExits[i]!)))
          }
          break
        }
      }
      if (diff !== undefined) return { diff, log }
    }
    return { diff: undefined, log }
  }))

const refreshOutcome = (exit: Exit.Exit<unknown, JwksError>) =>
  Exit.isSuccess(exit) ? { ok: true } : normalize(exit as never)

const fastCheckParams = { numRuns: Number(process.env.TOKEN_CACHE_RUNS ?? 25) }
type CacheKind = "both" | "time" | "custom" | "background"
const cacheKindArb = fc.constantFrom<CacheKind>("both", "time", "custom", "background")
const viaArb = fc.constantFrom<"effect" | "promise">("effect", "promise")
const sizesArb = fc.tuple(fc.constant(0), fc.integer({ min: 1, max: 5 }), fc.constant(1000))

const sequences = {
  ops: fc.array(opArb, { minLength: 3, maxLength: 60, size: "large" }),
  sizes: sizesArb,
  via: viaArb,
  cacheKind: cacheKindArb
}

/** The property over `sequences`, with keys from the cache alone or beside a resolver's key that takes anything. */
const answersAlike = (withAnyKey: boolean) =>
(
  { cacheKind, ops, sizes, via }: {
    readonly ops: ReadonlyArray<Op>
    readonly sizes: ReadonlyArray<number>
    readonly via: "effect" | "promise"
    readonly cacheKind: CacheKind
  }
) =>
  Effect.gen(function*() {
    const { diff, log } = yield* runSequence(ops, sizes, withAnyKey, via, cacheKind)
    if (diff !== undefined) throw new Error(`${diff}\n--- log:\n${log.join("\n")}`)
  })

describe("TokenValidator verified-token cache, against none", () => {
  it.effect.prop(
    "a validator with the token cache answers as one without, on any sequence (key-cache resolver)",
    sequences,
    answersAlike(false),
    { timeout: 60_000, fastCheck: fastCheckParams }
  )

  it.effect.prop(
    "a validator with the token cache answers as one without, on any sequence (resolver with an accept-anything key)",
    sequences,
    answersAlike(true),
    { timeout: 60_000, fastCheck: fastCheckParams }
  )
})
