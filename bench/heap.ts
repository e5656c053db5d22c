/**
 * `npm run bench:heap` (node with `--expose-gc`): does effect-jwks hold on to memory over many validations?
 *
 * One validator (the public `JwksCache.make` / `TokenValidator.make`, cache defaults) validates `--count` tokens
 * (default 1,000,000; `--quick` 100,000), `--concurrency` at a time (default 16), in a fixed mix: 70% good tokens
 * from a pool of 3,000 distinct ones (three times the verified-token cache, so that it keeps evicting), 30% bad ones
 * of several kinds (forged signature, expired, wrong issuer, wrong audience, 2,000 unknown kids none of which the key
 * set has, cycled, malformed, a forbidden `alg`, oversized). Every token's outcome is checked against
 * its kind. After a warm-up, `heapUsed` is read after a full `gc()` at the start, after every `--sample` validations
 * (default 100,000), and at the end. Target: under 10 MB of growth from start to end; exits non-zero above it.
 */
import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { type EffectJwks, makeEffectJwks } from "./effectJwks.js"
import { makeFixture } from "./setup.js"
import { describeMachine, machine, round, sleep } from "./stats.js"

const flag = (name: string): string | undefined => {
  const at = process.argv.indexOf(name)
  return at === -1 ? undefined : process.argv[at + 1]
}

const quick = process.argv.includes("--quick")
const count = Number(flag("--count") ?? (quick ? 1e5 : 1e6))
const settings = {
  count,
  concurrency: Number(flag("--concurrency") ?? 16),
  sampleEvery: Number(flag("--sample") ?? Math.min(100_000, count)),
  warmUp: 20_000,
  /** Good tokens per algorithm: 3,000 in all, three times the default `tokenCache`. */
  poolSize: 1_500,
  unknownKids: 2_000,
  targetMiB: 10
} as const

const gc = (globalThis as { gc?: () => void }).gc

interface Kind {
  readonly name: string
  /** Out of 100 validations. */
  readonly share: number
  readonly tokens: ReadonlyArray<string>
  /** The expected outcome: `ok`, or the refusal's reason. */
  readonly expect: string
}

const mib = (bytes: number) => bytes / 2 ** 20

const heapAfterGc = async () => {
  // Twice, with a turn of the event loop between: what one collection frees can make more collectable.
  gc!()
  await sleep(10)
  gc!()
  const usage = process.memoryUsage()
  return { heapUsed: usage.heapUsed, rss: usage.rss, external: usage.external }
}

const main = async () => {
  if (gc === undefined) {
    console.error("Run with --expose-gc: npm run bench:heap (tsx --expose-gc bench/heap.ts)")
    process.exitCode = 2
    return
  }
  const started = performance.now()
  const info = machine()
  console.log(`# Heap over ${settings.count.toLocaleString("en-US")} validations${quick ? " (--quick)" : ""}\n`)
  console.log(`Machine: ${describeMachine(info)}`)

  const fixture = await makeFixture(settings.poolSize)
  const unknownKids = await Promise.all(
    Array.from(
      { length: settings.unknownKids },
      (_, i) => fixture.signForged(i % 2 === 0 ? "ES256" : "RS256", `unknown-${randomBytes(8).toString("hex")}`)
    )
  )
  const [header, payload] = fixture.tokens.RS256.pool[0]!.split(".") as [string, string]
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
  const both = <A>(
    f: (tokens: (typeof fixture.tokens)["RS256"]) => A
  ) => [f(fixture.tokens.RS256), f(fixture.tokens.ES256)]
  const kinds: ReadonlyArray<Kind> = [
    { name: "good", share: 70, tokens: [...fixture.tokens.RS256.pool, ...fixture.tokens.ES256.pool], expect: "ok" },
    { name: "forged signature", share: 6, tokens: both((t) => t.bad["forged signature"]), expect: "InvalidSignature" },
    { name: "expired", share: 5, tokens: both((t) => t.bad.expired), expect: "Expired" },
    { name: "wrong issuer", share: 3, tokens: both((t) => t.bad["wrong issuer"]), expect: "IssuerMismatch" },
    { name: "wrong audience", share: 3, tokens: both((t) => t.bad["wrong audience"]), expect: "AudienceMismatch" },
    { name: "unknown kid", share: 6, tokens: unknownKids, expect: "NoMatchingKey" },
    {
      name: "malformed",
      share: 3,
      tokens: ["not-a-jwt", `${header}.${payload}`, `${header}.!!!.sig`, "a.b.c", `${encode([1, 2])}.${payload}.AAAA`],
      expect: "Malformed"
    },
    {
      name: "forbidden alg",
      share: 2,
      tokens: [`${encode({ alg: "none" })}.${payload}.`, `${encode({ alg: "HS256", kid: "x" })}.${payload}.AAAA`],
      expect: "AlgorithmNotAllowed"
    },
    { name: "oversized", share: 2, tokens: [`${header}.${"A".repeat(20_000)}.AAAA`], expect: "TooLarge" }
  ]
  // One slot per hundred, the kinds interleaved so that every stretch of the run has the same mix.
  const slots: Array<Kind> = []
  const remaining = kinds.map((kind) => kind.share)
  while (slots.length < 100) {
    kinds.forEach((kind, i) => {
      if (remaining[i]! > 0) {
        slots.push(kind)
        remaining[i]!--
      }
    })
  }
  const used = new Map<Kind, number>()
  const next = (i: number): { readonly kind: Kind; readonly token: string } => {
    const kind = slots[i % 100]!
    const n = used.get(kind) ?? 0
    used.set(kind, n + 1)
    return { kind, token: kind.tokens[n % kind.tokens.length]! }
  }

  const validator: EffectJwks = await makeEffectJwks({
    jwksUrl: fixture.jwksUrl("heap"),
    validator: { issuer: fixture.issuer, audience: fixture.audience, algorithms: ["RS256", "ES256"] },
    cache: {}
  })
  const outcomes = new Map<string, Map<string, number>>()
  const mismatches: Array<string> = []
  let issued = 0
  /** Validates tokens `issued` to `until`, `concurrency` at a time. */
  const runTo = async (until: number) => {
    const worker = async () => {
      while (issued < until) {
        const { kind, token } = next(issued++)
        const outcome = await validator.attempt(token)
        const byKind = outcomes.get(kind.name) ?? new Map<string, number>()
        byKind.set(outcome, (byKind.get(outcome) ?? 0) + 1)
        outcomes.set(kind.name, byKind)
        if (outcome !== kind.expect && mismatches.length < 10) {
          mismatches.push(`${kind.name}: expected ${kind.expect}, got ${outcome}`)
        }
      }
    }
    await Promise.all(Array.from({ length: settings.concurrency }, worker))
  }

  try {
    await runTo(settings.warmUp)
    if (mismatches.length > 0) throw new Error(`warm-up: unexpected outcomes\n${mismatches.join("\n")}`)
    const baseline = await heapAfterGc()
    console.log(
      `Mix per 100: ${
        kinds.map((kind) => `${kind.share} ${kind.name}`).join(", ")
      }; ${settings.concurrency} at a time; ` +
        `warm-up ${settings.warmUp.toLocaleString("en-US")} validations.\n`
    )
    console.log("| validations | elapsed s | validations/s | heapUsed MiB | growth MiB | rss MiB | external MiB |")
    console.log("|---:|---:|---:|---:|---:|---:|---:|")
    const row = (done: number, elapsed: number, rate: number, heap: Awaited<ReturnType<typeof heapAfterGc>>) =>
      console.log(
        `| ${done.toLocaleString("en-US")} | ${elapsed.toFixed(1)} | ${Math.round(rate).toLocaleString("en-US")} | ` +
          `${mib(heap.heapUsed).toFixed(2)} | ${mib(heap.heapUsed - baseline.heapUsed).toFixed(2)} | ` +
          `${mib(heap.rss).toFixed(1)} | ${mib(heap.external).toFixed(2)} |`
      )
    row(0, 0, 0, baseline)
    const samples = [{ validations: 0, elapsedSeconds: 0, ...baseline }]
    const runStart = performance.now()
    let lastAt = runStart
    for (let done = 0; done < settings.count;) {
      const chunk = Math.min(settings.sampleEvery, settings.count - done)
      await runTo(settings.warmUp + done + chunk)
      done += chunk
      const now = performance.now()
      const rate = chunk / ((now - lastAt) / 1000)
      const heap = await heapAfterGc()
      lastAt = performance.now()
      row(done, (now - runStart) / 1000, rate, heap)
      samples.push({ validations: done, elapsedSeconds: round((now - runStart) / 1000, 1), ...heap })
    }
    const runSeconds = (lastAt - runStart) / 1000
    const final = samples[samples.length - 1]!
    const growth = mib(final.heapUsed - baseline.heapUsed)
    const met = growth < settings.targetMiB
    console.log(
      `\nGrowth from start to end: ${growth.toFixed(2)} MiB over ${settings.count.toLocaleString("en-US")} ` +
        `validations (target under ${settings.targetMiB} MiB: ${met ? "met" : "MISSED"}); ` +
        `${runSeconds.toFixed(1)} s, ${Math.round(settings.count / runSeconds).toLocaleString("en-US")} validations/s.`
    )
    const byKind = Object.fromEntries([...outcomes].map(([kind, counts]) => [kind, Object.fromEntries(counts)]))
    console.log(
      `Outcomes by kind: ${
        Object.entries(byKind).map(([kind, counts]) =>
          `${kind} ${Object.entries(counts).map(([outcome, n]) => `${outcome} ${n}`).join("/")}`
        ).join("; ")
      }`
    )
    const status = await validator.status()
    console.log(`JWKS fetches during the whole run, warm-up included: ${status.fetches}`)
    if (mismatches.length > 0) {
      console.log(`Unexpected outcomes (first ${mismatches.length}):\n${mismatches.join("\n")}`)
    }
    if (!met || mismatches.length > 0) process.exitCode = 1
    const file = new URL(quick ? "./heap-quick.json" : "./heap.json", import.meta.url)
    const durationSeconds = (performance.now() - started) / 1000
    writeFileSync(
      file,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          machine: { ...info, loadAverageAtEnd: machine().loadAverage },
          settings,
          mix: kinds.map((kind) => ({ kind: kind.name, share: kind.share, distinctTokens: kind.tokens.length })),
          growthMiB: round(growth),
          targetMet: met,
          runSeconds: round(runSeconds, 1),
          durationSeconds: round(durationSeconds, 1),
          jwksFetches: status.fetches,
          outcomes: byKind,
          samples
        },
        null,
        2
      ) + "\n"
    )
    console.log(`Took ${durationSeconds.toFixed(1)} s in all. Wrote ${file.pathname}`)
  } finally {
    await validator.close()
    await fixture.close()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
