/**
 * `npm run bench:refresh`: validation latency over time across key-set refreshes, background refresh on vs off.
 *
 * A loopback JWKS server answers every request after `jwksDelayMs` (a slow identity provider, so that a refresh a
 * request has to wait for shows). Each configuration gets a fresh effect-jwks validator (built with the public
 * `JwksCache.make` / `TokenValidator.make`, every signature checked: `tokenCache: 0`) whose key set lives `interval`:
 *
 * - **background on**: the cache's fiber refetches at `threshold` of the interval, while the old set still serves;
 * - **background off**: the first validation after expiry fetches, and every validation meanwhile waits for it.
 *
 * The server runs on a worker thread (a remote identity provider's work is not the client's). After a warm-up (which
 * loads the first set, then runs the arrivals below for `warmUpMs`), validations arrive open-loop, one every
 * `periodMs` whether or not the previous ones are done (a closed loop would hide a stall: nothing new would start
 * while one waits), for `seconds`. Each validation's latency is the time from its scheduled arrival to its answer,
 * so the time a call waited for a busy event loop counts. "Across a refresh" are the validations that overlap a
 * JWKS fetch (from `windowMs` before the server receives it to `windowMs` after it answers).
 *
 * A third configuration is the **floor**: what any client that refreshes on the validating thread pays at the least.
 * Raw `node:crypto` checks each token (against the key the last fetch brought), and a timer refetches the set at the
 * same times as the library's background refresh: a bare `fetch`, `response.json()` and a `createPublicKey` per key,
 * in one go, with no checks of the answer and no bookkeeping.
 *
 * Prints a table, writes `bench/refresh-latency.json` and draws `bench/refresh-latency.svg`.
 * Flags: `--seconds N` (default 8).
 */
import { createPublicKey, type JsonWebKey, type KeyObject, verify as nodeVerify } from "node:crypto"
import { writeFileSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { makeEffectJwks } from "./effectJwks.js"
import { type Fixture, makeFixture, serveJwksOnWorker } from "./setup.js"
import { describeMachine, type Distribution, distribution, machine, ms, round, rounded } from "./stats.js"

const flag = (name: string): string | undefined => {
  const at = process.argv.indexOf(name)
  return at === -1 ? undefined : process.argv[at + 1]
}

const settings = {
  jwksDelayMs: 150,
  intervalSeconds: 2,
  threshold: 0.8,
  periodMs: 2,
  warmUpMs: 1000,
  seconds: Number(flag("--seconds") ?? 8),
  windowMs: 50,
  poolSize: 200,
  /** Width of the time bins the chart plots (the slowest validation of each). */
  binMs: 20,
  /** The refresh-cost phase: rounds of this many calls. */
  costCalls: 50,
  costRounds: 7
} as const

interface Config {
  readonly id: string
  readonly label: string
  /** effect-jwks with background refresh on or off, or the floor (see the top of the file). */
  readonly client: "effect-jwks" | "floor"
  readonly backgroundRefresh: boolean
}

const configs: ReadonlyArray<Config> = [
  {
    id: "on",
    label: `background refresh on (threshold ${settings.threshold})`,
    client: "effect-jwks",
    backgroundRefresh: true
  },
  { id: "off", label: "background refresh off", client: "effect-jwks", backgroundRefresh: false },
  {
    id: "floor",
    label: "floor: raw node:crypto, a bare fetch at the same times",
    client: "floor",
    backgroundRefresh: true
  }
]

/** What the driver calls: `attempt` resolves to `"ok"` or the reason of a refusal. */
interface Client {
  readonly attempt: (token: string) => Promise<string>
  readonly close: () => Promise<void>
}

/**
 * The floor's client: raw `node:crypto` against the RS256 key of the last set fetched, which a timer refetches
 * `threshold` of the interval after each answer, as the library's background fiber does (without its jitter).
 */
const makeFloor = async (fixture: Fixture, url: string): Promise<Client> => {
  let key: KeyObject | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let closed = false
  const load = async () => {
    const response = await fetch(url)
    const set = (await response.json()) as { readonly keys: ReadonlyArray<JsonWebKey & { readonly kid?: string }> }
    const keys = new Map(set.keys.map((jwk) => [jwk.kid, createPublicKey({ key: jwk, format: "jwk" })]))
    key = keys.get(fixture.keys.RS256.kid)
    if (!closed) timer = setTimeout(load, settings.intervalSeconds * 1000 * settings.threshold)
  }
  await load()
  const verify = (token: string): string => {
    const [header, payload, signature] = token.split(".")
    const signed = nodeVerify(
      "sha256",
      Buffer.from(`${header}.${payload}`),
      key!,
      Buffer.from(signature ?? "", "base64url")
    )
    if (!signed) return "signature"
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString("utf8"))
    if (claims.iss !== fixture.issuer) return "iss"
    if (claims.aud !== fixture.audience) return "aud"
    if (typeof claims.exp !== "number" || claims.exp <= Date.now() / 1000) return "exp"
    return "ok"
  }
  return {
    attempt: async (token) => verify(token),
    close: async () => {
      closed = true
      clearTimeout(timer)
    }
  }
}

interface Sample {
  /** When the validation was called, ms since the run's start. */
  readonly at: number
  readonly latency: number
  /** How late the call was against the arrival schedule (a busy event loop). */
  readonly late: number
}

interface Refresh {
  /** ms since the run's start */
  readonly receivedAt: number
  readonly answeredAt: number
}

interface Run {
  readonly config: Config
  readonly samples: ReadonlyArray<Sample>
  readonly refused: Record<string, number>
  readonly refreshes: ReadonlyArray<Refresh>
  readonly fetchesDuringRun: number
  readonly overall: Distribution
  readonly acrossRefresh: Distribution
  /** The validations that overlap no fetch: the baseline noise of the machine. */
  readonly elsewhere: Distribution
  readonly lateness: Distribution
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Calls `validator` open-loop for `durationMs`: one call every `periodMs` of the arrival schedule, whether or not
 * earlier ones are done. Between calls the loop yields with `setImmediate`, so I/O (a refresh's fetch) is served, but
 * the thread never sleeps: a timer's wake-up on an idle machine costs tens of µs and varies, more than the validation
 * being measured. A call's latency runs from its *scheduled* arrival to its answer, so a call held up because the
 * event loop was busy (with a refresh, say) counts the wait.
 */
const drive = async (validator: Pick<Client, "attempt">, pool: ReadonlyArray<string>, durationMs: number) => {
  const samples: Array<Sample> = []
  const refused: Record<string, number> = {}
  const inFlight = new Set<Promise<void>>()
  const start = performance.now()
  const end = start + durationMs
  let next = start
  let k = 0
  const fire = (scheduled: number) => {
    const token = pool[k++ % pool.length]!
    const called = performance.now()
    const done = validator.attempt(token).then((outcome) => {
      samples.push({ at: scheduled - start, latency: performance.now() - scheduled, late: called - scheduled })
      if (outcome !== "ok") refused[outcome] = (refused[outcome] ?? 0) + 1
      inFlight.delete(done)
    })
    inFlight.add(done)
  }
  while (next < end) {
    const now = performance.now()
    while (next <= now && next < end) {
      fire(next)
      next += settings.periodMs
    }
    await yieldToEventLoop()
  }
  await Promise.all(inFlight)
  return { start, samples, refused }
}

const run = async (fixture: Fixture, config: Config): Promise<Run> => {
  const label = `refresh-${config.id}`
  const pool = fixture.tokens.RS256.pool
  const validator: Client = config.client === "floor" ?
    await makeFloor(fixture, fixture.jwksUrl(label)) :
    await makeEffectJwks({
      jwksUrl: fixture.jwksUrl(label),
      // Every signature checked: a remembered token (the default cache of 1000 holds the whole pool) would make p50
      // the cost of a cache hit, a smaller base for the target's ratio than a validation's.
      validator: { issuer: fixture.issuer, audience: fixture.audience, algorithms: ["RS256", "ES256"], tokenCache: 0 },
      cache: {
        strategy: "time",
        interval: `${settings.intervalSeconds} seconds`,
        backgroundRefresh: config.backgroundRefresh,
        backgroundRefreshThreshold: settings.threshold
      }
    })
  try {
    // Warm-up: the first call loads the set; then the same arrivals for a while, so that the timed part starts hot.
    const first = await validator.attempt(pool[0]!)
    if (first !== "ok") throw new Error(`warm-up: a good token was refused (${first})`)
    const warm = await drive(validator, pool, settings.warmUpMs)
    if (Object.keys(warm.refused).length > 0) throw new Error(`warm-up: refused ${JSON.stringify(warm.refused)}`)
    const { start, samples, refused } = await drive(validator, pool, settings.seconds * 1000)
    const refreshes = fixture.requests()
      .filter((request) => request.label === label && request.receivedAt >= start)
      .map((request) => ({ receivedAt: request.receivedAt - start, answeredAt: request.answeredAt - start }))
    const isAcross = (sample: Sample) =>
      refreshes.some((refresh) =>
        sample.at <= refresh.answeredAt + settings.windowMs &&
        sample.at + sample.latency >= refresh.receivedAt - settings.windowMs
      )
    samples.sort((a, b) => a.at - b.at)
    return {
      config,
      samples,
      refused,
      refreshes,
      fetchesDuringRun: refreshes.length,
      overall: distribution(samples.map((sample) => sample.latency)),
      acrossRefresh: distribution(samples.filter(isAcross).map((sample) => sample.latency)),
      elsewhere: distribution(samples.filter((sample) => !isAcross(sample)).map((sample) => sample.latency)),
      lateness: distribution(samples.map((sample) => sample.late))
    }
  } finally {
    await validator.close()
  }
}

interface RefreshCost {
  /** Event-loop busy time of one bare `fetch(url)` + `arrayBuffer()`, ms, median of the rounds. */
  readonly fetchMs: number
  /** Of one `JwksCache.refresh` (the fetch through `HttpClient`, decode, key comparison, state). */
  readonly refreshMs: number
}

/**
 * What a refresh costs the event loop that also validates: busy time (`eventLoopUtilization`) per fetch, a refresh
 * against a bare `fetch` of the same URL, in interleaved rounds, with JIT-warm code (a background refresh every
 * 16 minutes runs colder, so slower).
 */
const refreshCost = async (fixture: Fixture): Promise<RefreshCost> => {
  // The same key set from a server that answers at once, so that the rounds take seconds.
  const server = await serveJwksOnWorker(JSON.stringify(fixture.jwks))
  const url = `${server.origin}/refresh-cost/.well-known/jwks.json`
  const validator = await makeEffectJwks({
    jwksUrl: url,
    validator: { issuer: fixture.issuer, audience: fixture.audience, algorithms: ["RS256"] },
    cache: { strategy: "time", interval: "1 hour", backgroundRefresh: false }
  })
  const busyPerCall = async (f: () => Promise<unknown>) => {
    const before = performance.eventLoopUtilization()
    for (let i = 0; i < settings.costCalls; i++) await f()
    return performance.eventLoopUtilization(before).active / settings.costCalls
  }
  const bare = () => fetch(url).then((response) => response.arrayBuffer())
  try {
    await busyPerCall(bare)
    await busyPerCall(validator.refresh)
    const fetches: Array<number> = []
    const refreshes: Array<number> = []
    for (let round = 0; round < settings.costRounds; round++) {
      fetches.push(await busyPerCall(bare))
      refreshes.push(await busyPerCall(validator.refresh))
    }
    return { fetchMs: distribution(fetches).p50, refreshMs: distribution(refreshes).p50 }
  } finally {
    await validator.close()
    await server.close()
  }
}

/** The slowest validation of each `binMs` bin, by call time: [bin centre in s, ms]. */
const bins = (samples: ReadonlyArray<Sample>): Array<[number, number]> => {
  const slowest = new Map<number, number>()
  for (const sample of samples) {
    const bin = Math.floor(sample.at / settings.binMs)
    slowest.set(bin, Math.max(slowest.get(bin) ?? 0, sample.latency))
  }
  return [...slowest.entries()].sort(([a], [b]) => a - b).map((
    [bin, latency]
  ) => [round(((bin + 0.5) * settings.binMs) / 1000, 3), round(latency, 3)])
}

const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** A hand-drawn chart: time on x, latency on a log y axis, one line per configuration, the fetches marked. */
const chart = (runs: ReadonlyArray<Run>): string => {
  const colors = ["#1f77b4", "#d62728", "#2ca02c"]
  const width = 960
  const height = 440
  const left = 64
  const right = 24
  const top = 130
  const bottom = 52
  const plotWidth = width - left - right
  const plotHeight = height - top - bottom
  const all = runs.flatMap((r) => bins(r.samples).map(([, latency]) => latency))
  const lowDecade = Math.min(-1, Math.floor(Math.log10(Math.max(1e-3, Math.min(...all)))))
  const highDecade = Math.max(3, Math.ceil(Math.log10(Math.max(...all))))
  const x = (seconds: number) => left + (seconds / settings.seconds) * plotWidth
  const y = (millis: number) =>
    top + plotHeight -
    ((Math.log10(Math.max(millis, 10 ** lowDecade)) - lowDecade) / (highDecade - lowDecade)) * plotHeight
  const f = (value: number) => value.toFixed(1)
  const out: Array<string> = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="20" font-size="15" font-weight="bold">effect-jwks: validation latency across key-set ` +
      `refreshes (JWKS answers in ${settings.jwksDelayMs} ms, key set lives ${settings.intervalSeconds} s)</text>`
  )
  // Grid and y ticks: every decade labelled, 2 and 5 as faint lines.
  for (let decade = lowDecade; decade <= highDecade; decade++) {
    const value = 10 ** decade
    out.push(
      `<line x1="${left}" x2="${left + plotWidth}" y1="${f(y(value))}" y2="${f(y(value))}" stroke="#d0d0d0"/>`,
      `<text x="${left - 8}" y="${f(y(value) + 4)}" text-anchor="end">${
        value >= 1 ? value : value.toFixed(-decade)
      }</text>`
    )
    if (decade < highDecade) {
      for (const m of [2, 5]) {
        const v = m * value
        out.push(
          `<line x1="${left}" x2="${left + plotWidth}" y1="${f(y(v))}" y2="${
            f(y(v))
          }" stroke="#eeeeee" stroke-dasharray="2 3"/>`
        )
      }
    }
  }
  // x ticks: every second.
  for (let second = 0; second <= settings.seconds; second++) {
    out.push(
      `<line x1="${f(x(second))}" x2="${f(x(second))}" y1="${top + plotHeight}" y2="${
        top + plotHeight + 5
      }" stroke="#333"/>`,
      `<text x="${f(x(second))}" y="${top + plotHeight + 19}" text-anchor="middle">${second}</text>`
    )
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#333"/>`,
    `<text x="${left + plotWidth / 2}" y="${height - 10}" text-anchor="middle">time since start of run (s)</text>`,
    `<text transform="translate(16 ${top + plotHeight / 2}) rotate(-90)" text-anchor="middle">` +
      `slowest validation per ${settings.binMs} ms (ms, log scale)</text>`
  )
  // The fetches: a shaded band from request to answer, with a dashed line where it starts.
  runs.forEach((r, i) => {
    for (const refresh of r.refreshes) {
      const x0 = x(refresh.receivedAt / 1000)
      const x1 = x(refresh.answeredAt / 1000)
      out.push(
        `<rect x="${f(x0)}" y="${top}" width="${f(Math.max(1, x1 - x0))}" height="${plotHeight}" fill="${
          colors[i]
        }" fill-opacity="0.08"/>`,
        `<line x1="${f(x0)}" x2="${f(x0)}" y1="${top}" y2="${top + plotHeight}" stroke="${
          colors[i]
        }" stroke-dasharray="5 4" stroke-opacity="0.7"/>`,
        `<path d="M${f(x0 - 5)},${top - 8 - i * 12} h10 l-5,8 z" fill="${colors[i]}"/>`
      )
    }
  })
  runs.forEach((r, i) => {
    const points = bins(r.samples).map(([seconds, millis]) => `${f(x(seconds))},${f(y(millis))}`).join(" ")
    out.push(
      `<polyline points="${points}" fill="none" stroke="${colors[i]}" stroke-width="1.4" stroke-linejoin="round"/>`
    )
  })
  // Legend, above the plot.
  runs.forEach((r, i) => {
    const ly = 40 + i * 18
    const text = `${r.config.label}: p50 ${ms(r.overall.p50)} ms, p99 ${ms(r.overall.p99)} ms; across a refresh ` +
      `p99 ${ms(r.acrossRefresh.p99)} ms, max ${ms(r.acrossRefresh.max)} ms`
    out.push(
      `<line x1="${left}" x2="${left + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${colors[i]}" stroke-width="2"/>`,
      `<text x="${left + 30}" y="${ly}">${escapeXml(text)}</text>`
    )
  })
  out.push(
    `<text x="${left}" y="${40 + runs.length * 18}" fill="#555">▼ and dashed line: a JWKS ` +
      `fetch reaches the server (shaded until it answers), in the colour of its run</text>`,
    "</svg>"
  )
  return out.join("\n") + "\n"
}

const main = async () => {
  const started = performance.now()
  const info = machine()
  console.log(`# Latency across key-set refreshes\n`)
  console.log(`Machine: ${describeMachine(info)}`)
  console.log(
    `Settings: JWKS answers after ${settings.jwksDelayMs} ms; strategy time, interval ${settings.intervalSeconds} s; ` +
      `one validation (RS256, every signature checked: tokenCache 0) every ${settings.periodMs} ms, open loop, for ` +
      `${settings.seconds} s per configuration\n`
  )
  // The server on a worker thread: its work is the identity provider's, not a cost of the client being measured.
  const fixture = await makeFixture(settings.poolSize, { jwksDelayMs: settings.jwksDelayMs, serverThread: "worker" })
  const runs: Array<Run> = []
  let cost: RefreshCost | undefined
  try {
    for (const config of configs) runs.push(await run(fixture, config))
    cost = await refreshCost(fixture)
  } finally {
    await fixture.close()
  }

  console.log(
    "| configuration | validations | p50 ms | p99 ms | across a refresh: n | p50 ms | p99 ms | max ms | " +
      "**p99 across / p50** | elsewhere: p99 ms | JWKS fetches |"
  )
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  for (const r of runs) {
    console.log(
      `| ${r.config.label} | ${r.overall.count} | ${ms(r.overall.p50)} | ${ms(r.overall.p99)} | ` +
        `${r.acrossRefresh.count} | ${ms(r.acrossRefresh.p50)} | ${ms(r.acrossRefresh.p99)} | ` +
        `${ms(r.acrossRefresh.max)} | **${(r.acrossRefresh.p99 / r.overall.p50).toFixed(2)}×** | ` +
        `${ms(r.elsewhere.p99)} | ${r.fetchesDuringRun} |`
    )
  }
  console.log(
    `\nAcross a refresh: the validations that overlap a JWKS fetch, from ${settings.windowMs} ms before the server ` +
      `receives it to ${settings.windowMs} ms after it answers; elsewhere: all the others.`
  )
  const [on, off, floor] = runs as [Run, Run, Run]
  const onRatio = on.acrossRefresh.p99 / on.overall.p50
  const spike = off.acrossRefresh.max >= settings.jwksDelayMs / 2
  console.log(
    `Target, background on: p99 across a refresh at most 2× p50: ${onRatio.toFixed(2)}× ` +
      `(${onRatio <= 2 ? "met" : "missed"}; p99 elsewhere is ${(on.elsewhere.p99 / on.overall.p50).toFixed(2)}× p50).`
  )
  console.log(
    `Background off: slowest validation across a refresh ${ms(off.acrossRefresh.max)} ms, ` +
      `${(off.acrossRefresh.max / off.overall.p50).toFixed(0)}× its p50 (${
        spike ? "the blocking refresh shows" : "no spike: unexpected"
      }); p99 across a refresh ${(off.acrossRefresh.p99 / off.overall.p50).toFixed(1)}× p50.`
  )
  console.log(
    `Against the floor (a bare fetch, unpaced, at the same times): p99 across a refresh ` +
      `${ms(floor.acrossRefresh.p99)} ms (max ${ms(floor.acrossRefresh.max)}, p99 elsewhere ` +
      `${ms(floor.elsewhere.p99)}); effect-jwks, background on: ${ms(on.acrossRefresh.p99)} ms (max ` +
      `${ms(on.acrossRefresh.max)}, p99 elsewhere ${ms(on.elsewhere.p99)}).`
  )
  if (cost !== undefined) {
    console.log(
      `Event-loop time of one refresh (JIT-warm, median of ${settings.costRounds} rounds of ${settings.costCalls}): ` +
        `JwksCache.refresh ${ms(cost.refreshMs)} ms, of which a bare fetch of the same URL takes ${
          ms(cost.fetchMs)
        } ms.`
    )
  }
  for (const r of runs) {
    const refused = Object.entries(r.refused)
    if (refused.length > 0) console.log(`${r.config.label}: refused ${JSON.stringify(r.refused)}`)
    console.log(
      `${r.config.label}: fetches reached the server at ${
        r.refreshes.map((refresh) => (refresh.receivedAt / 1000).toFixed(2)).join(", ")
      } s; calls late against the schedule: p99 ${ms(r.lateness.p99)} ms, max ${ms(r.lateness.max)} ms`
    )
  }

  const svg = new URL("./refresh-latency.svg", import.meta.url)
  const json = new URL("./refresh-latency.json", import.meta.url)
  writeFileSync(svg, chart(runs))
  const durationSeconds = (performance.now() - started) / 1000
  writeFileSync(
    json,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: { ...info, loadAverageAtEnd: machine().loadAverage },
        settings,
        durationSeconds: round(durationSeconds, 1),
        configurations: runs.map((r) => ({
          id: r.config.id,
          label: r.config.label,
          backgroundRefresh: r.config.backgroundRefresh,
          latencyMs: rounded(r.overall),
          acrossRefreshMs: rounded(r.acrossRefresh),
          elsewhereMs: rounded(r.elsewhere),
          p99OverP50: round(r.overall.p99 / r.overall.p50),
          p99AcrossRefreshOverP50: round(r.acrossRefresh.p99 / r.overall.p50),
          p99AcrossRefreshOverP50Elsewhere: round(r.acrossRefresh.p99 / r.elsewhere.p50),
          latenessMs: rounded(r.lateness),
          refused: r.refused,
          refreshes: r.refreshes.map((refresh) => ({
            receivedAtSeconds: round(refresh.receivedAt / 1000),
            answeredAtSeconds: round(refresh.answeredAt / 1000)
          })),
          slowestPerBin: bins(r.samples),
          slowest: [...r.samples].sort((a, b) => b.latency - a.latency).slice(0, 20).map((sample) => ({
            atSeconds: round(sample.at / 1000),
            latencyMs: round(sample.latency)
          }))
        })),
        refreshEventLoopMs: cost === undefined
          ? undefined
          : { refresh: round(cost.refreshMs), bareFetch: round(cost.fetchMs) },
        targetMet: onRatio <= 2
      },
      null,
      2
    ) + "\n"
  )
  console.log(`\nTook ${durationSeconds.toFixed(1)} s. Wrote ${svg.pathname} and ${json.pathname}`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
