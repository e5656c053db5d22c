/**
 * `npm run bench:breakdown` (or `-- --quick`): where the time of one validation goes, side by side in one process.
 *
 * The peer benchmark (`npm run bench`) calls every verifier once per token from outside any runtime, so an Effect
 * library pays for starting a fiber (`runPromise`) on every token. This script separates that cost from the
 * library's own:
 *
 * - `raw`: `node:crypto.verify` with a ready `KeyObject`, then `JSON.parse` of the claims and the iss/aud/exp
 *   checks: the limit, as in the peer benchmark.
 * - `raw in runPromise`: the very same work wrapped in `runPromise(Effect.sync(...))`: what the boundary costs any
 *   effect called from outside Effect.
 * - effect-jwks through `runPromise` (as the peer benchmark calls it), through `TokenValidator.toPromise` (for apps
 *   outside Effect: no fiber when the answer is in memory), and inside one running fiber (a batch in one
 *   `Effect.forEach`, as an Effect app calls it from its HTTP middleware), each with the verified-token cache off
 *   (every signature checked) and on (every token remembered).
 * - effect-jwks with a tracer installed: the cost of its span, which it skips under Effect's built-in tracer.
 *
 * Interleaved rounds, medians of µs per validation, ratios to `raw` within the run. Every call gets its token as a new
 * string (see `asBytes`). Writes `bench/breakdown.json`
 * (`breakdown-quick.json`).
 */
import { JwksCache, JwksSource, TokenValidator } from "effect-jwks"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { createPublicKey, type JsonWebKey, verify } from "node:crypto"
import { writeFileSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { type Alg, algorithms, makeFixture } from "./setup.js"
import { describeMachine, machine, orderOf, round } from "./stats.js"

const quick = process.argv.includes("--quick")
const rounds = quick ? 5 : 21
/** Tokens per timed batch (the pool is cycled); remembered tokens are cheap, so they get more. */
const batch = { checked: quick ? 1_000 : 3_000, remembered: quick ? 20_000 : 60_000 }

const fixture = await makeFixture(200)
const runtime = ManagedRuntime.make(Logger.minimumLogLevel(LogLevel.Warning))
const scope = await runtime.runPromise(Scope.make())

/** A tracer other than the built-in one (as OpenTelemetry's would be), whose spans cost what built-in spans cost. */
const builtIn = Context.get(DefaultServices.liveServices, Tracer.Tracer)
const otherTracer = Tracer.make({ span: (...args) => builtIn.span(...args), context: builtIn.context })
const traced = ManagedRuntime.make(Layer.merge(Logger.minimumLogLevel(LogLevel.Warning), Layer.setTracer(otherTracer)))

const validator = (tokenCache: number) =>
  runtime.runPromise(
    Effect.gen(function*() {
      const cache = yield* JwksCache.make(JwksSource.fromKeySet(fixture.jwks), { strategy: "time" })
      return yield* TokenValidator.make(TokenValidator.fromCache(cache), {
        issuer: fixture.issuer,
        audience: fixture.audience,
        algorithms: ["RS256", "ES256"],
        tokenCache
      })
    }).pipe(Scope.extend(scope))
  )
const rt = await runtime.runtime()
const checking = await validator(0)
const remembering = await validator(1000)

const rawVerifier = (alg: Alg) => {
  const key = createPublicKey({ key: fixture.keys[alg].jwk as JsonWebKey, format: "jwk" })
  const input = alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" as const } : key
  return (token: string) => {
    const first = token.indexOf(".")
    const last = token.lastIndexOf(".")
    const data = Buffer.from(token.slice(0, last))
    if (!verify("sha256", data, input, Buffer.from(token.slice(last + 1), "base64url"))) throw new Error("signature")
    const claims = JSON.parse(Buffer.from(token.slice(first + 1, last), "base64url").toString("utf8"))
    if (claims.iss !== fixture.issuer || claims.aud !== fixture.audience || !(claims.exp > Date.now() / 1000)) {
      throw new Error("claims")
    }
    return claims
  }
}

interface Row {
  readonly id: string
  readonly name: string
  readonly remembered: boolean
  /** Runs `count` validations of `pool`, cycling. */
  readonly run: (pool: ReadonlyArray<string>, count: number) => Promise<void> | void
  /** Work to do before a batch of that size is timed. */
  readonly prepare?: (pool: ReadonlyArray<string>, count: number) => void
}

/**
 * The pool's tokens as bytes: every call gets its token as a new string decoded from them, as a server gets it from a
 * request header (a string used again keeps its hash, which would flatter a cache keyed by the token). Every row pays
 * the decode alike.
 */
const bytesOf = new Map<string, ReadonlyArray<Buffer>>()
const asBytes = (pool: ReadonlyArray<string>): ReadonlyArray<Buffer> => {
  let bytes = bytesOf.get(pool[0]!)
  if (bytes === undefined) {
    bytes = pool.map((token) => Buffer.from(token, "latin1"))
    bytesOf.set(pool[0]!, bytes)
  }
  return bytes
}
const oneByOne = (validate: (token: string) => Promise<unknown>) => async (pool: ReadonlyArray<string>, n: number) => {
  const bytes = asBytes(pool)
  for (let i = 0; i < n; i++) await validate(bytes[i % bytes.length]!.toString("latin1"))
}
/** The batch as one array of the pool's bytes, made before the clock starts. */
const cycled = (pool: ReadonlyArray<string>, n: number): ReadonlyArray<Buffer> => {
  const bytes = asBytes(pool)
  return Array.from({ length: n }, (_, i) => bytes[i % bytes.length]!)
}
const inOneFiber = (service: TokenValidator.Service) => {
  const batches = new Map<string, ReadonlyArray<Buffer>>()
  return {
    prepare: (pool: ReadonlyArray<string>, n: number) => batches.set(`${pool[0]}/${n}`, cycled(pool, n)),
    run: (pool: ReadonlyArray<string>, n: number) =>
      runtime.runPromise(
        Effect.forEach(batches.get(`${pool[0]}/${n}`)!, (bytes) => service.validate(bytes.toString("latin1")), {
          discard: true
        })
      )
  }
}

/** The three ways to call one validator: `runPromise` per token, `toPromise`, and inside one fiber. */
const effectJwksRows = (
  id: "checked" | "remembered",
  label: string,
  service: TokenValidator.Service
): ReadonlyArray<Row> => {
  const remembered = id === "remembered"
  return [
    {
      id: `${id}-runPromise`,
      name: `effect-jwks, ${label}, runPromise per token`,
      remembered,
      run: oneByOne((token) => runtime.runPromise(service.validate(token)))
    },
    {
      id: `${id}-toPromise`,
      name: `effect-jwks, ${label}, TokenValidator.toPromise`,
      remembered,
      run: oneByOne(TokenValidator.toPromise(rt)(service))
    },
    { id: `${id}-fiber`, name: `effect-jwks, ${label}, inside one fiber`, remembered, ...inOneFiber(service) }
  ]
}

const rowsFor = (alg: Alg): ReadonlyArray<Row> => {
  const raw = rawVerifier(alg)
  return [
    {
      id: "raw",
      name: "raw node:crypto.verify + JSON.parse + iss/aud/exp (sync)",
      remembered: false,
      run: (pool, n) => {
        const bytes = asBytes(pool)
        for (let i = 0; i < n; i++) raw(bytes[i % bytes.length]!.toString("latin1"))
      }
    },
    {
      id: "raw-in-runPromise",
      name: "the same raw work in runPromise(Effect.sync(...))",
      remembered: false,
      run: oneByOne((token) => runtime.runPromise(Effect.sync(() => raw(token))))
    },
    ...effectJwksRows("checked", "tokenCache 0", checking),
    {
      id: "checked-traced",
      name: "effect-jwks, tokenCache 0, runPromise per token, a tracer installed",
      remembered: false,
      run: oneByOne((token) => traced.runPromise(checking.validate(token)))
    },
    ...effectJwksRows("remembered", "remembered token", remembering)
  ]
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const results: Record<string, Array<{ id: string; name: string; microseconds: number; vsRaw: number }>> = {}
const started = machine()
for (const alg of algorithms) {
  const pool = fixture.tokens[alg].pool
  const rows = rowsFor(alg)
  // Every row must accept the pool before anything is timed (this also fills the verified-token cache).
  for (const row of rows) {
    row.prepare?.(pool, pool.length)
    row.prepare?.(pool, row.remembered ? batch.remembered : batch.checked)
    await row.run(pool, pool.length)
  }
  const samples = new Map<string, Array<number>>(rows.map((row) => [row.id, []]))
  for (let r = 0; r < rounds; r++) {
    for (const row of orderOf(rows, r)) {
      const count = row.remembered ? batch.remembered : batch.checked
      const start = performance.now()
      await row.run(pool, count)
      samples.get(row.id)!.push(((performance.now() - start) * 1000) / count)
    }
  }
  const rawMicros = median(samples.get("raw")!)
  results[alg] = rows.map((row) => {
    const microseconds = median(samples.get(row.id)!)
    return { id: row.id, name: row.name, microseconds: round(microseconds, 2), vsRaw: round(rawMicros / microseconds) }
  })
}

console.log(`\nµs per validation, median of ${rounds} interleaved rounds; vs raw: raw's time over the row's.\n`)
console.log(`| | RS256 µs | vs raw | ES256 µs | vs raw |\n|---|---:|---:|---:|---:|`)
for (const [i, row] of results.RS256!.entries()) {
  const es = results.ES256![i]!
  console.log(
    `| ${row.name} | ${row.microseconds.toFixed(2)} | ${row.vsRaw.toFixed(2)}× | ${es.microseconds.toFixed(2)} | ${
      es.vsRaw.toFixed(2)
    }× |`
  )
}
const ended = machine()
console.log(`\nMachine: ${describeMachine(started)} (load at the end: ${ended.loadAverage[0]!.toFixed(2)})`)

const file = new URL(quick ? "./breakdown-quick.json" : "./breakdown.json", import.meta.url)
writeFileSync(
  file,
  JSON.stringify(
    { date: new Date().toISOString(), machine: started, loadAtEnd: ended.loadAverage, rounds, results },
    null,
    2
  ) +
    "\n"
)
console.log(`Wrote ${file.pathname}`)

await runtime.runPromise(Scope.close(scope, Exit.void))
await runtime.dispose()
await traced.dispose()
await fixture.close()
