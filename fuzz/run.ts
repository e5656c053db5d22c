/**
 * `npm run fuzz`: at least 100,000 generated inputs against the validators, the key set import and the HTTP source
 * (see `fuzz/harness.ts`). Prints the count per category and the total; exits 1 on any violation.
 *
 * Options: `--seed <n>` (default: random, printed), `--runs <n>` (inputs per category, default 6000).
 */
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { categories, emptyTally, makeFixture, type Tally } from "./harness.js"

const argument = (name: string): number | undefined => {
  const index = process.argv.indexOf(`--${name}`)
  return index < 0 ? undefined : Number(process.argv[index + 1])
}

const seed = argument("seed") ?? Math.floor(Math.random() * 2 ** 31)
const runs = argument("runs") ?? 6000

const program = Effect.gen(function*() {
  const started = performance.now()
  const fixture = yield* makeFixture
  const all = categories(fixture.material)
  console.log(`fuzzing ${all.length} categories x ${runs} inputs, seed ${seed}`)
  const tallies: Array<readonly [string, string, Tally, number]> = []
  for (const [index, category] of all.entries()) {
    const tally = emptyTally()
    const t0 = performance.now()
    yield* category.run(fixture, runs, seed + index * 1_000_003, tally)
    const seconds = (performance.now() - t0) / 1000
    tallies.push([category.name, category.target, tally, seconds])
    console.log(
      `${category.name.padEnd(18)} ${category.target.padEnd(16)} ${String(tally.inputs).padStart(7)} inputs  ` +
        `${String(tally.accepted).padStart(6)} accepted  ${tally.violationCount} violations  ` +
        `${tally.falseRejections.length} false rejections  ${seconds.toFixed(1)} s`
    )
  }
  const total = tallies.reduce((sum, [, , tally]) => sum + tally.inputs, 0)
  const violations = tallies.flatMap(([, , tally]) => tally.violations)
  const violationCount = tallies.reduce((sum, [, , tally]) => sum + tally.violationCount, 0)
  const falseRejections = tallies.flatMap(([, , tally]) => tally.falseRejections)
  const longest = Math.max(...tallies.map(([, , tally]) => tally.longestDescription))
  console.log(`total ${total} inputs in ${((performance.now() - started) / 1000).toFixed(1)} s (seed ${seed})`)
  console.log(`longest JwksError description: ${longest} characters`)
  for (const line of falseRejections) console.log(`false rejection: ${line}`)
  for (const line of violations) console.log(`VIOLATION: ${line}`)
  console.log(
    `${violationCount} violations${violationCount > violations.length ? ` (the first ${violations.length} shown)` : ""}`
  )
  if (total < 100_000) console.log(`note: ${total} inputs, fewer than the 100,000 of a full run (--runs ${runs})`)
  return violationCount === 0
})

Effect.runPromise(program.pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None))).then(
  (ok) => process.exit(ok ? 0 : 1),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
