/**
 * `npm run bench:heap` (node with `--expose-gc`): does effect-jwks hold on to memory over many validations?
 *
 * One validator (the public `JwksCache.make` / `TokenValidator.make`, cache defaults) validates `--count` tokens
 * (default 1,000,000; `--quick` 100,000), `--concurrency` at a time (default 16), in a fixed mix: 70% good tokens
 * from a pool of 3,000 distinct ones (three times the verified-token cache, so that it keeps evicting), 30% bad ones
 * of several kinds (forged signature and unknown kid, each token new: claims never seen before, a kid never seen
 * before, so that anything kept per token or per kid would grow with the run; expired, wrong issuer, wrong audience,
 * malformed, a forbidden `alg`, oversized, from small pools). Every token's outcome is checked against its kind.
 * `heapUsed` is read after a full `gc()` before the warm-up, after it (the start), after every `--sample` validations
 * (default 100,000), and at the end. Target: under 10 MB of growth from start to end; exits non-zero above it. The
 * growth from before the warm-up is reported too.
 */
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
  targetMiB: 10
} as const

const gc = (globalThis as { gc?: () => void }).gc

interface Kind {
  readonly name: string
  /** Out of 100 validations. */
  readonly share: number
  /** The `n`th token of this kind. */
  readonly token: (n: number) => string
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
  const [header, payload, signature] = fixture.tokens.RS256.pool[0]!.split(".") as [string, string, string]
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>
  const cycled = (tokens: ReadonlyArray<string>) => (n: number) => tokens[n % tokens.length]!
  const both = (f: (tokens: (typeof fixture.tokens)["RS256"]) => string) =>
    cycled([f(fixture.tokens.RS256), f(fixture.tokens.ES256)])
  const kinds: ReadonlyArray<Kind> = [
    {
      name: "good",
      share: 70,
      token: cycled([...fixture.tokens.RS256.pool, ...fixture.tokens.ES256.pool]),
      expect: "ok"
    },
    // A published key, claims never seen before: the signature does not verify.
    {
      name: "forged signature",
      share: 6,
      token: (n) => `${header}.${encode({ ...claims, jti: `forged-${n}` })}.${signature}`,
      expect: "InvalidSignature"
    },
    { name: "expired", share: 5, token: both((t) => t.bad.expired), expect: "Expired" },
    { name: "wrong issuer", share: 3, token: both((t) => t.bad["wrong issuer"]), expect: "IssuerMismatch" },
    { name: "wrong audience", share: 3, token: both((t) => t.bad["wrong audience"]), expect: "AudienceMismatch" },
    // A kid never seen before: refused before any signature is checked, so none is made.
    {
      name: "unknown kid",
      share: 6,
      token: (n) => `${encode({ alg: n % 2 === 0 ? "ES256" : "RS256", kid: `unknown-${n}` })}.${payload}.${signature}`,
      expect: "NoMatchingKey"
    },
    {
      name: "malformed",
      share: 3,
      token: cycled([
        "not-a-jwt",
        `${header}.${payload}`,
        `${header}.!!!.sig`,
        "a.b.c",
        `${encode([1, 2])}.${payload}.AAAA`
      ]),
      expect: "Malformed"
    },
    {
      name: "forbidden alg",
      share: 2,
      token: cycled([
        `${encode({ alg: "none" })}.${payload}.`,
        `${encode({ alg: "HS256", kid: "x" })}.${payload}.AAAA`
      ]),
      expect: "AlgorithmNotAllowed"
    },
    { name: "oversized", share: 2, token: cycled([`${header}.${"A".repeat(20_000)}.AAAA`]), expect: "TooLarge" }
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
    return { kind, token: kind.token(n) }
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
    const beforeWarmUp = await heapAfterGc()
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
        `${runSeconds.toFixed(1)} s, ${
          Math.round(settings.count / runSeconds).toLocaleString("en-US")
        } validations/s. ` +
        `From before the warm-up: ${mib(final.heapUsed - beforeWarmUp.heapUsed).toFixed(2)} MiB.`
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
          mix: kinds.map((kind) => ({ kind: kind.name, share: kind.share })),
          growthMiB: round(growth),
          growthFromBeforeWarmUpMiB: round(mib(final.heapUsed - beforeWarmUp.heapUsed)),
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
