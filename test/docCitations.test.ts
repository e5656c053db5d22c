/**
 * SECURITY.md backs each claim with tests, cited as `test/File.test.ts` › "title" (the file named last before the
 * title). Every citation names a test, or a `describe` group, of that file by its whole title; tests built from one
 * template (the fuzz and chaos suites', one per `Retry-After` form) are named by the whole of one such title, or as a
 * family by the fixed text before their first `${...}`. A test renamed or removed fails here, with its citation.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"

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
