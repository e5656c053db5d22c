/**
 * `npm run bench` (or `npm run bench -- --quick`): effect-jwks against its peers, side by side in one process.
 *
 * Every verifier gets the same tokens from the same loopback JWKS server, proves that it refuses a token with a wrong
 * issuer, a wrong audience, an expired one and a forged signature, and has its keys loaded before anything is timed.
 * Then:
 *
 * - **Throughput**: interleaved rounds; in each round every verifier runs one batch (awaiting each token before the
 *   next), starting from a different verifier each round. A verifier's batch size is set once, at warm-up, so that a
 *   batch takes about `batchMs`, and stays fixed. Reported: the median ops/s over the rounds, and its ratio to the
 *   median of raw `node:crypto.verify` in the same run. Each batch is timed twice: by the wall clock (the headline)
 *   and by this process's CPU time (`process.cpuUsage`, all threads), which other processes on a busy machine
 *   disturb much less.
 * - **Concurrency**: 1000 validations started at once (`Promise.all`), the median wall time over a few rounds.
 *
 * Each call gets its token as a new string, decoded from bytes as a server's request header is (see `asBytes`).
 *
 * Prints markdown tables and writes `bench/results.json` (`bench/results-quick.json` for `--quick`), with every
 * round's numbers.
 */
import { readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { performance } from "node:perf_hooks"
import { type Alg, algorithms, type Fixture, makeFixture } from "./setup.js"
import { orderOf, revision } from "./stats.js"
import { type Contestant, contestants, type Verifier, type Verify } from "./verifiers.js"

interface Settings {
  readonly poolSize: number
  /** Each verifier's batch is sized once, at warm-up, to take about this long; it stays fixed for every round. */
  readonly batchMs: number
  readonly rounds: number
  readonly concurrency: number
  readonly concurrencyRounds: number
  /** A verifier gets as many concurrency rounds as fit in this (at least one)... */
  readonly concurrencyBudgetSeconds: number
  /** ...unless one round is estimated to take longer than this: then none (quick mode), with a note. */
  readonly skipConcurrencyAboveSeconds: number
}

const quick = process.argv.includes("--quick")

const settings: Settings = quick
  ? {
    poolSize: 40,
    batchMs: 30,
    rounds: 5,
    concurrency: 1000,
    concurrencyRounds: 1,
    concurrencyBudgetSeconds: 1.5,
    skipConcurrencyAboveSeconds: 1.5
  }
  : {
    poolSize: 200,
    batchMs: 100,
    rounds: 21,
    concurrency: 1000,
    concurrencyRounds: 5,
    concurrencyBudgetSeconds: 15,
    skipConcurrencyAboveSeconds: Number.POSITIVE_INFINITY
  }

const packages = [
  "jose",
  "aws-jwt-verify",
  "jwks-rsa",
  "jsonwebtoken",
  "fast-jwt",
  "get-jwks",
  "effect",
  "@effect/platform"
] as const

const versionOf = (name: string): string => {
  try {
    const file = new URL(`../node_modules/${name}/package.json`, import.meta.url)
    return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version
  } catch {
    return "unknown"
  }
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** An error with its causes (`cause`, or fast-jwt's `originalError`). */
const describe = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const inner = (error as { readonly originalError?: unknown }).originalError ?? error.cause
  return `${error.name}: ${error.message}${inner === undefined ? "" : ` (${describe(inner)})`}`
}

/** Resolves to the outcome of one call, whether the verifier throws, rejects or returns. */
const attempt = async (verify: Verify, token: string): Promise<{ ok: true } | { ok: false; error: string }> => {
  try {
    await verify(token)
    return { ok: true }
  } catch (error) {
    return { ok: false, error: describe(error) }
  }
}

const cpuSecondsSince = (start: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1e6
}

interface Sample {
  /** Validations per second of wall-clock time. */
  readonly wall: number
  /** Validations per second of this process's CPU time. */
  readonly cpu: number
}

/**
 * The pool's tokens as bytes. Every call gets its token as a new string decoded from them, as a server gets it from a
 * request header: a string used again keeps the hash V8 computed for it, which would flatter a cache keyed by the
 * token (measured ~0.9 µs a lookup). The decode (~0.1 µs) is paid by every verifier alike.
 */
const bytesOf = new WeakMap<ReadonlyArray<string>, ReadonlyArray<Buffer>>()
const asBytes = (pool: ReadonlyArray<string>): ReadonlyArray<Buffer> => {
  let bytes = bytesOf.get(pool)
  if (bytes === undefined) {
    bytes = pool.map((token) => Buffer.from(token, "latin1"))
    bytesOf.set(pool, bytes)
  }
  return bytes
}

/** Runs `count` validations over the pool, one after the other. */
const runBatch = async (
  verifier: Verifier,
  verify: Verify,
  pool: ReadonlyArray<string>,
  count: number
): Promise<Sample> => {
  const bytes = asBytes(pool)
  const n = bytes.length
  const cpuStart = process.cpuUsage()
  const start = performance.now()
  if (verifier.mode === "sync") {
    for (let i = 0; i < count; i++) verify(bytes[i % n]!.toString("latin1"))
  } else {
    for (let i = 0; i < count; i++) await verify(bytes[i % n]!.toString("latin1"))
  }
  const wallSeconds = (performance.now() - start) / 1000
  return { wall: count / wallSeconds, cpu: count / Math.max(cpuSecondsSince(cpuStart), 1e-6) }
}

/**
 * The wall-clock ops/s to size a batch by: the best of three short runs of about a third of a batch each, the best
 * because a busy machine only ever makes a run slower.
 */
const calibrate = async (verifier: Verifier, verify: Verify, pool: ReadonlyArray<string>): Promise<number> => {
  let best = 0
  for (let attempt = 0; attempt < 3; attempt++) {
    let count = 0
    const start = performance.now()
    while (performance.now() - start < settings.batchMs / 3) {
      await runBatch(verifier, verify, pool, 10)
      count += 10
    }
    best = Math.max(best, count / ((performance.now() - start) / 1000))
  }
  return best
}

/** Starts `count` validations at once and waits for all of them. */
const runConcurrent = async (verify: Verify, pool: ReadonlyArray<string>, count: number) => {
  const bytes = asBytes(pool)
  const n = bytes.length
  const cpuStart = process.cpuUsage()
  const start = performance.now()
  await Promise.all(Array.from({ length: count }, (_, i) => verify(bytes[i % n]!.toString("latin1"))))
  return { wallMs: performance.now() - start, cpuMs: cpuSecondsSince(cpuStart) * 1000 }
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

interface Entry {
  readonly contestant: Contestant
  readonly verifier: Verifier
  /** The algorithms it verified correctly (good token in, bad tokens out). */
  readonly algorithms: Array<Alg>
  readonly verify: Partial<Record<Alg, Verify>>
  /** The fixed batch size of each algorithm, and the ops/s measured when sizing it. */
  readonly batch: Partial<Record<Alg, { readonly size: number; readonly calibratedOpsPerSec: number }>>
  readonly notes: Array<string>
  readonly rounds: Record<Alg, Array<Sample>>
  readonly concurrent: Record<Alg, Array<{ readonly wallMs: number; readonly cpuMs: number }>>
}

/** The good token must pass and every bad one fail; an algorithm that does not is left out, with a note. */
const checkCorrectness = async (entry: Entry, fixture: Fixture) => {
  for (const alg of entry.verifier.algorithms) {
    const verify = entry.verifier.verify(alg)
    const tokens = fixture.tokens[alg]
    const good = await attempt(verify, tokens.pool[0]!)
    if (!good.ok) {
      entry.notes.push(`${alg}: left out, it refused a good token (${good.error})`)
      continue
    }
    const accepted = []
    for (const [what, token] of Object.entries(tokens.bad)) {
      if ((await attempt(verify, token)).ok) accepted.push(what)
    }
    if (accepted.length > 0) {
      entry.notes.push(`${alg}: left out, it ACCEPTED a token with ${accepted.join(", ")}`)
      continue
    }
    entry.algorithms.push(alg)
    entry.verify[alg] = verify
  }
}

interface AlgResult {
  readonly batchSize: number
  readonly medianOpsPerSec: number
  readonly ratioToRaw: number
  readonly medianOpsPerCpuSec: number
  readonly cpuRatioToRaw: number
  readonly medianConcurrentMs: number | undefined
  readonly medianConcurrentCpuMs: number | undefined
  readonly roundsOpsPerSec: ReadonlyArray<number>
  readonly roundsOpsPerCpuSec: ReadonlyArray<number>
  readonly roundsConcurrentMs: ReadonlyArray<number>
  readonly roundsConcurrentCpuMs: ReadonlyArray<number>
}

const summarize = (entry: Entry, reference: Entry, alg: Alg): AlgResult | undefined => {
  const rounds = entry.rounds[alg]
  const concurrent = entry.concurrent[alg]
  if (rounds.length === 0) return undefined
  const wall = rounds.map((sample) => sample.wall)
  const cpu = rounds.map((sample) => sample.cpu)
  const concurrentWall = concurrent.map((sample) => sample.wallMs)
  const concurrentCpu = concurrent.map((sample) => sample.cpuMs)
  return {
    batchSize: entry.batch[alg]!.size,
    medianOpsPerSec: median(wall),
    ratioToRaw: median(wall) / median(reference.rounds[alg].map((sample) => sample.wall)),
    medianOpsPerCpuSec: median(cpu),
    cpuRatioToRaw: median(cpu) / median(reference.rounds[alg].map((sample) => sample.cpu)),
    medianConcurrentMs: concurrent.length === 0 ? undefined : median(concurrentWall),
    medianConcurrentCpuMs: concurrent.length === 0 ? undefined : median(concurrentCpu),
    roundsOpsPerSec: wall,
    roundsOpsPerCpuSec: cpu,
    roundsConcurrentMs: concurrentWall,
    roundsConcurrentCpuMs: concurrentCpu
  }
}

/** Each round's ratio of two rows' batches (run side by side in that round), and their spread over the rounds. */
const roundRatios = (entries: ReadonlyArray<Entry>) => {
  const byId = new Map(entries.map((entry) => [entry.contestant.id, entry]))
  const wall = (id: string, alg: Alg) => byId.get(id)?.rounds[alg].map((sample) => sample.wall) ?? []
  const paired = (id: string, against: string, alg: Alg) => {
    const [mine, theirs] = [wall(id, alg), wall(against, alg)]
    return mine.length === 0 || mine.length !== theirs.length ? [] : mine.map((value, i) => value / theirs[i]!)
  }
  const spread = (values: ReadonlyArray<number>) =>
    values.length === 0
      ? undefined
      : { median: median(values), min: Math.min(...values), max: Math.max(...values) }
  const shown = (s: ReturnType<typeof spread>) =>
    s === undefined ? "n/a" : `${s.median.toFixed(2)} [${s.min.toFixed(2)}, ${s.max.toFixed(2)}]`
  return { byId, wall, paired, spread, shown }
}

/**
 * Issue #5's target 2: repeated tokens at least as fast as fast-jwt's verified-token cache, through
 * `Effect.runPromise(validate)` (the issue's call form) and `toPromise`, judged round by round as target 1 is: against
 * fast-jwt's cache as it comes (keyed by a SHA-256 of the token) and keyed by the token itself (its README's faster
 * choice).
 */
const targetTwo = (entries: ReadonlyArray<Entry>) => {
  const { byId, paired, shown, spread } = roundRatios(entries)
  const lines: Array<string> = []
  const figures: Array<Record<string, unknown>> = []
  const against = [
    ["fast-jwt-get-jwks-cache", "fast-jwt's cache (its default key, a SHA-256)"],
    ["fast-jwt-get-jwks-cache-identity", "fast-jwt's cache keyed by the token itself"]
  ] as const
  for (const [fastJwt, label] of against) {
    for (const id of ["effect-jwks-effect-runpromise-token-cache-time", "effect-jwks-promise-token-cache-time"]) {
      for (const alg of algorithms) {
        const vsFastJwt = spread(paired(id, fastJwt, alg))
        if (vsFastJwt === undefined) continue
        const tie = vsFastJwt.min < 1 && vsFastJwt.max > 1
        const met = vsFastJwt.median >= 1
        const verdict = tie ? `a tie (${met ? "met" : "missed"} by the median)` : met ? "met" : "missed"
        lines.push(`${byId.get(id)!.verifier.name}, ${alg}: vs ${label} ${shown(vsFastJwt)}: ${verdict}`)
        figures.push({ id, against: fastJwt, alg, vsFastJwt, met, tie, verdict })
      }
    }
  }
  return { lines, figures }
}

/**
 * Issue #5's target 1 for the rows of effect-jwks it names (`Effect.runPromise(validate)`) and the one for callers
 * outside Effect (`toPromise`), tokens checked in full: at least 0.85x raw node:crypto and no slower than
 * aws-jwt-verify. Judged round by round (each round's ratio of the two batches run side by side), so that the spread
 * shows whether a verdict is a tie.
 */
const targetOne = (entries: ReadonlyArray<Entry>) => {
  const { byId, paired, shown, spread, wall } = roundRatios(entries)
  const fasterOf = (ids: ReadonlyArray<string>, alg: Alg) => {
    const medians = ids.flatMap((id) => {
      const values = wall(id, alg)
      return values.length === 0 ? [] : [[id, median(values)] as const]
    })
    return medians.length === 0 ? undefined : medians.reduce((best, next) => next[1] > best[1] ? next : best)[0]
  }
  const lines: Array<string> = []
  const figures: Array<Record<string, unknown>> = []
  // The raw work itself through `Effect.runPromise`: the ceiling of that call form, judged as the rows are.
  for (const id of ["raw-node-crypto-runpromise", "effect-jwks-effect-runpromise-time", "effect-jwks-promise-time"]) {
    for (const alg of algorithms) {
      const vsRaw = spread(paired(id, "raw-node-crypto", alg))
      // Against aws-jwt-verify's faster call (`verify` or `verifySync`) in this run.
      const aws = fasterOf(["aws-jwt-verify", "aws-jwt-verify-sync"], alg)
      const vsAws = aws === undefined ? undefined : spread(paired(id, aws, alg))
      if (vsRaw === undefined) continue
      // "Tie": the rounds fall on both sides of aws-jwt-verify, so the median's side says little.
      const tie = vsAws !== undefined && vsAws.min < 1 && vsAws.max > 1
      const met = vsRaw.median >= 0.85 && (vsAws?.median ?? 0) >= 1
      const verdict = vsRaw.median < 0.85
        ? "missed"
        : met && !tie
        ? "met"
        : tie
        ? `a tie with aws-jwt-verify (${met ? "met" : "missed"} by the median)`
        : "missed"
      lines.push(
        `${byId.get(id)!.verifier.name}, ${alg}: vs raw ${shown(vsRaw)}, vs ${
          byId.get(aws ?? "")?.verifier.name ?? "aws-jwt-verify"
        } ${shown(vsAws)}: ${verdict}`
      )
      figures.push({ id, alg, vsRaw, against: aws, vsAwsJwtVerify: vsAws, met, tie, verdict })
    }
  }
  return { lines, figures }
}

const ops = (value: number | undefined) => (value === undefined ? "n/a" : Math.round(value).toLocaleString("en-US"))
const ratio = (value: number | undefined) => (value === undefined ? "n/a" : `${value.toFixed(2)}×`)
const ms = (value: number | undefined) => (value === undefined ? "n/a" : value.toFixed(1))

const main = async () => {
  const started = performance.now()
  const phases: Record<string, number> = {}
  const phase = async <A>(name: string, run: () => Promise<A>): Promise<A> => {
    const start = performance.now()
    const result = await run()
    phases[name] = (performance.now() - start) / 1000
    return result
  }

  const cpus = os.cpus()
  const machine = {
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverageAtStart: os.loadavg(),
    revision: revision()
  }
  const versions = Object.fromEntries(packages.map((name) => [name, versionOf(name)]))
  console.log(`# JWT verifier benchmark${quick ? " (--quick)" : ""}\n`)
  console.log(
    `Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.platform}; code ` +
      `${machine.revision?.commit.slice(0, 7) ?? "unknown"}${
        machine.revision?.sourcesChanged ? " with uncommitted changes" : ""
      }`
  )
  console.log(`Versions: ${Object.entries(versions).map(([name, version]) => `${name} ${version}`).join(", ")}`)
  console.log(
    `Settings: pool of ${settings.poolSize} tokens per alg, batches of ~${settings.batchMs} ms, ` +
      `${settings.rounds} rounds, ${settings.concurrency} concurrent x up to ${settings.concurrencyRounds} rounds\n`
  )

  const fixture = await phase("setup", () => makeFixture(settings.poolSize))
  const entries: Array<Entry> = []
  try {
    await phase("build, check and warm up", async () => {
      for (const contestant of contestants) {
        const verifier = await contestant.make(fixture)
        const entry: Entry = {
          contestant,
          verifier,
          algorithms: [],
          verify: {},
          batch: {},
          notes: [...verifier.notes],
          rounds: { RS256: [], ES256: [] },
          concurrent: { RS256: [], ES256: [] }
        }
        entries.push(entry)
        await checkCorrectness(entry, fixture)
        for (const alg of entry.algorithms) {
          // Warm-up: every token of the pool once, untimed; then size the batch.
          const pool = fixture.tokens[alg].pool
          await runBatch(verifier, entry.verify[alg]!, pool, pool.length)
          const calibrated = await calibrate(verifier, entry.verify[alg]!, pool)
          entry.batch[alg] = {
            size: Math.max(10, Math.round((calibrated * settings.batchMs) / 1000)),
            calibratedOpsPerSec: calibrated
          }
        }
      }
    })
    const fetchesAfterWarmUp = fixture.fetches()

    await phase("throughput rounds", async () => {
      for (let round = 0; round < settings.rounds; round++) {
        for (const alg of algorithms) {
          for (const entry of orderOf(entries, round)) {
            const verify = entry.verify[alg]
            if (verify === undefined) continue
            const size = entry.batch[alg]!.size
            entry.rounds[alg].push(await runBatch(entry.verifier, verify, fixture.tokens[alg].pool, size))
            await yieldToEventLoop()
          }
        }
      }
    })

    /** Concurrency rounds per verifier and algorithm: fewer (or none, in quick mode) for the very slow. */
    const estimateSeconds = (entry: Entry, alg: Alg) =>
      settings.concurrency / median(entry.rounds[alg].map((sample) => sample.wall))
    const concurrencyRounds = (entry: Entry, alg: Alg): number => {
      const estimate = estimateSeconds(entry, alg)
      return estimate > settings.skipConcurrencyAboveSeconds
        ? 0
        : Math.max(1, Math.min(settings.concurrencyRounds, Math.floor(settings.concurrencyBudgetSeconds / estimate)))
    }
    for (const entry of entries) {
      for (const alg of entry.algorithms) {
        const rounds = concurrencyRounds(entry, alg)
        if (rounds < settings.concurrencyRounds) {
          const estimate = estimateSeconds(entry, alg).toFixed(1)
          entry.notes.push(
            rounds === 0
              ? `${alg}: ${settings.concurrency}-concurrent skipped (estimated ${estimate} s; run without --quick)`
              : `${alg}: ${rounds} ${settings.concurrency}-concurrent round${rounds === 1 ? "" : "s"} only ` +
                `(estimated ${estimate} s each)`
          )
        }
      }
    }

    await phase("concurrency rounds", async () => {
      for (let round = 0; round < settings.concurrencyRounds; round++) {
        for (const alg of algorithms) {
          for (const entry of orderOf(entries, round)) {
            const verify = entry.verify[alg]
            if (verify === undefined || round >= concurrencyRounds(entry, alg)) continue
            entry.concurrent[alg].push(await runConcurrent(verify, fixture.tokens[alg].pool, settings.concurrency))
            await yieldToEventLoop()
          }
        }
      }
    })

    const fetchesAtEnd = fixture.fetches()
    const reference = entries[0]!
    const summary = entries.map((entry) => ({
      id: entry.contestant.id,
      name: entry.verifier.name,
      mode: entry.verifier.mode,
      notes: entry.notes,
      jwksFetches: {
        afterWarmUp: fetchesAfterWarmUp[entry.contestant.id] ?? 0,
        total: fetchesAtEnd[entry.contestant.id] ?? 0
      },
      RS256: summarize(entry, reference, "RS256"),
      ES256: summarize(entry, reference, "ES256")
    }))

    console.log(
      `| verifier | RS256 ops/s | vs raw | ES256 ops/s | vs raw | ${settings.concurrency}-concurrent ms (RS256 / ES256) |`
    )
    console.log("|---|---:|---:|---:|---:|---:|")
    for (const row of summary) {
      console.log(
        `| ${row.name} | ${ops(row.RS256?.medianOpsPerSec)} | ${ratio(row.RS256?.ratioToRaw)} | ` +
          `${ops(row.ES256?.medianOpsPerSec)} | ${ratio(row.ES256?.ratioToRaw)} | ` +
          `${ms(row.RS256?.medianConcurrentMs)} / ${ms(row.ES256?.medianConcurrentMs)} |`
      )
    }
    console.log(
      `\nops/s: wall clock, median over ${settings.rounds} interleaved rounds of one batch of sequential ` +
        `validations (sized at warm-up to ~${settings.batchMs} ms, then fixed); vs raw: ratio to the median of raw ` +
        `node:crypto.verify; concurrent: median wall time of ${settings.concurrency} validations started at once.`
    )

    console.log(
      "\nThe same batches by this process's CPU time (all threads, so V8's background GC and compiler work count against the row that runs), which other processes disturb less:\n"
    )
    console.log(
      `| verifier | RS256 ops/CPU-s | vs raw | ES256 ops/CPU-s | vs raw | ` +
        `${settings.concurrency}-concurrent CPU ms (RS256 / ES256) |`
    )
    console.log("|---|---:|---:|---:|---:|---:|")
    for (const row of summary) {
      console.log(
        `| ${row.name} | ${ops(row.RS256?.medianOpsPerCpuSec)} | ${ratio(row.RS256?.cpuRatioToRaw)} | ` +
          `${ops(row.ES256?.medianOpsPerCpuSec)} | ${ratio(row.ES256?.cpuRatioToRaw)} | ` +
          `${ms(row.RS256?.medianConcurrentCpuMs)} / ${ms(row.ES256?.medianConcurrentCpuMs)} |`
      )
    }

    const verdicts = targetOne(entries)
    console.log(
      `\nIssue #5, target 1 (each round's ratio of the two batches run side by side; median [min, max] over the rounds):`
    )
    for (const line of verdicts.lines) console.log(`- ${line}`)
    const repeated = targetTwo(entries)
    console.log(`\nIssue #5, target 2 (repeated tokens; each round's ratio, median [min, max] over the rounds):`)
    for (const line of repeated.lines) console.log(`- ${line}`)

    console.log("\nJWKS requests per verifier (after warm-up → end of run):")
    for (const row of summary) {
      if (row.jwksFetches.total > 0) {
        console.log(`- ${row.name}: ${row.jwksFetches.afterWarmUp} → ${row.jwksFetches.total}`)
      }
    }
    const notes = summary.flatMap((row) => row.notes.map((note) => `- ${row.name}: ${note}`))
    if (notes.length > 0) console.log(`\nNotes:\n${notes.join("\n")}`)

    const loadAverageAtEnd = os.loadavg()
    const [startLoad, endLoad] = [machine.loadAverageAtStart[0]!, loadAverageAtEnd[0]!]
    if (Math.max(startLoad, endLoad) > machine.cores / 2) {
      console.log(
        `\nLoad average (1 min) was ${startLoad.toFixed(1)} at the start and ${endLoad.toFixed(1)} at the end, on ` +
          `${machine.cores} cores: other processes competed for the CPU, so wall-clock numbers are low and noisy.`
      )
    }
    const durationSeconds = (performance.now() - started) / 1000
    const file = new URL(quick ? "./results-quick.json" : "./results.json", import.meta.url)
    const results = {
      mode: quick ? "quick" : "full",
      date: new Date().toISOString(),
      machine: { ...machine, loadAverageAtEnd },
      versions,
      settings,
      reference: reference.contestant.id,
      phasesSeconds: phases,
      durationSeconds,
      targetOne: verdicts.figures,
      targetTwo: repeated.figures,
      verifiers: summary
    }
    writeFileSync(file, JSON.stringify(results, null, 2) + "\n")
    console.log(
      `\nPhases: ${Object.entries(phases).map(([name, s]) => `${name} ${s.toFixed(1)} s`).join(", ")}; ` +
        `total ${durationSeconds.toFixed(1)} s. Wrote ${file.pathname}`
    )
  } finally {
    for (const entry of entries) await entry.verifier.close?.()
    await fixture.close()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
