/**
 * What the docs state that the code decides, checked against the code:
 *
 * - SECURITY.md backs each claim with tests, cited as `test/File.test.ts` › "title" (the file named last before the
 *   title). Every citation names a test, or a `describe` group, of that file by its whole title; tests built from one
 *   template (the fuzz and chaos suites', one per `Retry-After` form) are named by the whole of one such title, or as
 *   a family by the fixed text before their first `${...}`. A test renamed or removed fails here, with its citation.
 * - The cache settings tables (the README's, docs/jwks-cache.md's) give each option's default as
 *   `JwksCache.defaults` holds it, and the variable docs/jwks-cache.md names for an option is the one
 *   `JwksCache.config` reads for it (none for one it marks "code only").
 */
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as JwksCache from "../src/JwksCache.js"

const root = path.resolve(import.meta.dirname, "..")

/**
 * A title as written in source or markdown, compared as read: escapes undone (`\"` is `"`), and runs of white space
 * as one space (markdown wraps long cells).
 */
const plain = (text: string): string => text.replace(/\\(.)/g, "$1").replace(/\s+/g, " ").trim()

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

interface Titles {
  readonly exact: ReadonlySet<string>
  readonly templates: ReadonlyArray<RegExp>
}

/** The titles of a file's tests and groups: `it(...)`, `it.effect(...)`, `test(...)`, `describe(...)` and the like. */
const titlesOf = (file: string): Titles => {
  const exact = new Set<string>()
  const templates: Array<RegExp> = []
  const source = fs.readFileSync(path.join(root, file), "utf8")
  const calls = /\b(?:describe|it|test)(?:\.\w+)*\(\s*(?:"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\]|\\.)*)`)/g
  for (const [, quoted, template] of source.matchAll(calls)) {
    const title = quoted ?? template
    const parts = title.split(/\$\{[^}]*\}/)
    if (quoted !== undefined || parts.length === 1) {
      exact.add(plain(title))
    } else {
      templates.push(new RegExp(`^${parts.map((part) => escapeRegExp(plain(part))).join(".+")}$`))
      // The family: its fixed text before the first `${...}`, without the separator that leads to it.
      const family = plain(parts[0]).replace(/[\s:,(-]+$/, "")
      if (family !== "") exact.add(family)
    }
  }
  return { exact, templates }
}

interface Citation {
  readonly file: string
  readonly title: string
}

const citationsOf = (document: string): Array<Citation> => {
  const found: Array<Citation> = []
  let file: string | undefined
  for (const [, named, title] of document.matchAll(/`(test\/[\w./-]+\.test\.ts)`|›\s*"((?:[^"\\]|\\.)*)"/g)) {
    if (named !== undefined) file = named
    else found.push({ file: file ?? "(no file named before it)", title: plain(title) })
  }
  return found
}

describe("SECURITY.md's citations", () => {
  const document = fs.readFileSync(path.join(root, "SECURITY.md"), "utf8")
  const citations = citationsOf(document)

  it("every › is read as a citation", () => {
    // One this reader could not parse would go unchecked. (The page's own "`file › test name`" says how to cite.)
    expect(citations.length).toBe(document.replace("`file › test name`", "").split("›").length - 1)
  })

  it("every cited test exists in the file cited with it", () => {
    const titles = new Map<string, Titles>()
    const missing = citations.filter(({ file, title }) => {
      if (!fs.existsSync(path.join(root, file))) return true
      const known = titles.get(file) ?? titlesOf(file)
      titles.set(file, known)
      return !known.exact.has(title) && !known.templates.some((template) => template.test(title))
    })
    expect(missing).toEqual([])
  })
})

/** A default as the tables write it: `"both"`, `true`, 1000, 0.8, 20 minutes, 1 hour. */
const written = (value: unknown): string | undefined => {
  if (typeof value === "string") return `\`"${value}"\``
  if (typeof value === "boolean") return `\`${value}\``
  if (typeof value === "number") return String(value)
  if (!Duration.isDuration(value)) return undefined
  const millis = Duration.toMillis(value)
  const [size, unit] = ([[3_600_000, "hour"], [60_000, "minute"], [1000, "second"], [1, "millisecond"]] as const)
    .find(([size]) => millis % size === 0)!
  return `${millis / size} ${unit}${millis === size ? "" : "s"}`
}

/**
 * The rows of a document's table headed "| option | default |", up to the first line that is not one: the option
 * (without its backticks), then its other cells, trimmed.
 */
const settingsRows = (document: string): Map<string, ReadonlyArray<string>> => {
  const lines = fs.readFileSync(path.join(root, document), "utf8").split("\n")
  const header = lines.findIndex((line) => line.startsWith("| option | default |"))
  const end = lines.findIndex((line, index) => index > header && !line.startsWith("|"))
  return new Map(
    lines.slice(header + 2, end).flatMap((line) => {
      const [, option, rest] = /^\| `(\w+)` \|(.*)\|$/.exec(line) ?? []
      return option === undefined ? [] : [[option, rest!.split("|").map((cell) => cell.trim())] as const]
    })
  )
}

describe("the cache settings tables", () => {
  const defaults: Record<string, unknown> = JwksCache.defaults
  for (const document of ["README.md", "docs/jwks-cache.md"]) {
    it(`${document}: every option JwksCache.defaults holds, with its default`, () => {
      const rows = settingsRows(document)
      // Each default a table can state (the retry schedule is described in words, and checked by its own tests).
      const stated = Object.entries(defaults).flatMap(([option, value]) => {
        const text = written(value)
        return text === undefined ? [] : [[option, text] as const]
      })
      expect(stated.length).toBeGreaterThan(5)
      expect(stated.map(([option]) => [option, rows.get(option)?.[0]])).toEqual(stated)
    })
  }

  it("docs/jwks-cache.md: each variable it names is the one JwksCache.config reads for that option, and a code-only option is read from none", () => {
    /** The options `JwksCache.config` reads from an environment of one variable. */
    const read = (variable: string, value: string) =>
      Effect.runSync(
        Effect.withConfigProvider(
          JwksCache.config,
          ConfigProvider.fromMap(new Map([[variable, value]]), { pathDelim: "_" })
        )
      )
    // A value each option takes, other than its default.
    const samples: Record<string, string> = {
      strategy: "time",
      interval: "5 minutes",
      usages: "5",
      backgroundRefresh: "false",
      backgroundRefreshThreshold: "0.5",
      maxStale: "2 hours",
      unknownKidThrottle: "10 seconds"
    }
    const rows = Array.from(
      settingsRows("docs/jwks-cache.md"),
      ([option, [, variable]]) => [option, variable!] as const
    )
    const named = rows.filter(([, variable]) => variable !== "code only")
    expect(named.map(([option]) => option).sort()).toEqual(Object.keys(samples).sort())
    for (const [option, variable] of named) {
      const name = /^`(JWKS_CACHE_\w+)`$/.exec(variable)?.[1]
      expect(name === undefined ? undefined : read(name, samples[option]!)[option as keyof JwksCache.Options], option)
        .toBeDefined()
    }
    // Under the name it would have: a value that no option takes is not even read.
    for (const [option] of rows.filter(([, variable]) => variable === "code only")) {
      const name = `JWKS_CACHE_${option.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`
      expect(read(name, "not a value")[option as keyof JwksCache.Options], option).toBeUndefined()
    }
  })
})
