/**
 * Small helpers the scenario scripts share: percentiles, the machine and the code measured, number formatting.
 */
import { execFileSync } from "node:child_process"
import * as os from "node:os"

/** The `q` quantile (0 to 1) of ascending `sorted`, by nearest rank; `NaN` when empty. */
export const quantile = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

export interface Distribution {
  readonly count: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
}

export const distribution = (values: ReadonlyArray<number>): Distribution => {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!
  }
}

/** The same distribution, each figure to `digits` decimals (for JSON). */
export const rounded = (d: Distribution, digits = 3): Distribution => ({
  count: d.count,
  p50: round(d.p50, digits),
  p90: round(d.p90, digits),
  p99: round(d.p99, digits),
  p999: round(d.p999, digits),
  max: round(d.max, digits)
})

/**
 * The commit measured, and whether the library's sources differed from it (the scripts build `dist/` from the working
 * tree): a figure in the docs can then be traced to the code it was measured on.
 */
export const revision = (): { readonly commit: string; readonly sourcesChanged: boolean } | undefined => {
  try {
    const git = (...args: ReadonlyArray<string>) => execFileSync("git", args, { encoding: "utf8" }).trim()
    return { commit: git("rev-parse", "HEAD"), sourcesChanged: git("status", "--porcelain", "--", "src") !== "" }
  } catch {
    return undefined
  }
}

export const machine = () => {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverage: os.loadavg(),
    revision: revision()
  }
}

export const describeMachine = (info: ReturnType<typeof machine>): string =>
  `${info.cpu}, ${info.cores} cores, Node ${info.node}, ${info.platform}; load average ` +
  info.loadAverage.map((load) => load.toFixed(2)).join(" ") +
  (info.revision === undefined
    ? ""
    : `; code ${info.revision.commit.slice(0, 7)}${info.revision.sourcesChanged ? " with uncommitted changes" : ""}`)

/** Milliseconds with two decimals below 10, one below 100, none above. */
export const ms = (value: number): string =>
  Number.isNaN(value) ? "n/a" : value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0)

export const round = (value: number, digits = 3): number => Number(value.toFixed(digits))

export const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/**
 * `items` in the order of round `round`: a shuffle seeded by the round (the same in every run), so that no verifier
 * always runs right after the same other one (whose garbage or warm caches it would inherit).
 */
export const orderOf = <A>(items: ReadonlyArray<A>, round: number): ReadonlyArray<A> => {
  const order = [...items]
  let seed = (round + 1) * 2654435761
  for (let i = order.length - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    const j = seed % (i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  return order
}
