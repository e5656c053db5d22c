/**
 * Every `@example` in the doc comments of `src/` compiles against the current API: each ```ts block is type-checked
 * as a module of its own, importing `effect-jwks` as a user would (through `tsconfig.json`'s paths, to the sources).
 * An example that drifts from the API it shows fails here, with the file and line it came from.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

const root = path.resolve(import.meta.dirname, "..")

interface Example {
  /** Where the block starts: `src/Module.ts:123`. */
  readonly origin: string
  readonly text: string
}

const sources = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sources(path.join(dir, entry.name))
      : entry.name.endsWith(".ts")
      ? [path.join(dir, entry.name)]
      : []
  )

/** The ```ts blocks of the doc comments of `file`, without their leading ` * `. */
const examplesOf = (file: string): Array<Example> => {
  const found: Array<Example> = []
  let block: { start: number; lines: Array<string> } | undefined
  fs.readFileSync(file, "utf8").split("\n").forEach((line, index) => {
    const text = line.replace(/^\s*\* ?/, "")
    if (block === undefined) {
      if (/^\s*\*/.test(line) && text.trimEnd() === "```ts") block = { start: index + 2, lines: [] }
    } else if (text.trimEnd() === "```" || /\*\/\s*$/.test(line)) {
      found.push({ origin: `${path.relative(root, file)}:${block.start}`, text: block.lines.join("\n") + "\n" })
      block = undefined
    } else {
      block.lines.push(text)
    }
  })
  return found
}

/** The ```ts blocks of a Markdown file. */
const markdownExamplesOf = (file: string): Array<Example> => {
  const found: Array<Example> = []
  let block: { start: number; lines: Array<string> } | undefined
  fs.readFileSync(file, "utf8").split("\n").forEach((line, index) => {
    if (block === undefined) {
      if (line.trimEnd() === "```ts") block = { start: index + 2, lines: [] }
    } else if (line.trimEnd() === "```") {
      found.push({ origin: `${path.relative(root, file)}:${block.start}`, text: block.lines.join("\n") + "\n" })
      block = undefined
    } else {
      block.lines.push(line)
    }
  })
  return found
}

/** Type-checks each example as a module of its own; the problems, each with the example's origin. */
const typeCheck = (examples: ReadonlyArray<Example>): Array<string> => {
  const config = ts.getParsedCommandLineOfConfigFile(path.join(root, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"))
    }
  })!
  // Examples name things they do not use again (`const program = ...`): that is their point.
  const options = { ...config.options, noEmit: true, noUnusedLocals: false, noUnusedParameters: false }
  // Each example as a file that exists only in memory, next to the sources, so that imports resolve as theirs do.
  const virtual = new Map(
    examples.map((example, i) => [path.join(root, "src", `__doc_example_${i}__.ts`), example] as const)
  )
  const host = ts.createCompilerHost(options)
  const readFile = host.readFile
  host.fileExists = (file) => virtual.has(file) || ts.sys.fileExists(file)
  host.readFile = (file) => virtual.get(file)?.text ?? readFile(file)
  const program = ts.createProgram([...virtual.keys()], options, host)
  return ts.getPreEmitDiagnostics(program).flatMap((diagnostic) => {
    const example = diagnostic.file === undefined ? undefined : virtual.get(diagnostic.file.fileName)
    if (example === undefined) return [ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")]
    const { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start ?? 0)
    return [`${example.origin} (+${line}): ${ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")}`]
  })
}

/** The lines inside the doc comments of `file` that do not start with `*`: code pasted into a comment by an edit. */
const strayLinesOf = (file: string): Array<string> => {
  const stray: Array<string> = []
  let inside = false
  fs.readFileSync(file, "utf8").split("\n").forEach((line, index) => {
    if (!inside) {
      inside = /^\s*\/\*\*/.test(line) && !/\*\//.test(line.replace(/^\s*\/\*\*/, ""))
    } else {
      if (!/^\s*\*/.test(line)) stray.push(`${path.relative(root, file)}:${index + 1}: ${line}`)
      if (/\*\//.test(line)) inside = false
    }
  })
  return stray
}

describe("doc comment examples", () => {
  it("every line inside a doc comment of src/ is a comment line", () => {
    const files = sources(path.join(root, "src"))
    expect(files.length).toBeGreaterThan(20)
    expect(files.flatMap(strayLinesOf)).toEqual([])
  })

  it("every @example in src/ type-checks against the current API", () => {
    const examples = sources(path.join(root, "src")).flatMap(examplesOf)
    expect(examples.length).toBeGreaterThan(100)
    expect(typeCheck(examples)).toEqual([])
  }, 120_000)

  it("every ```ts block of the README and docs/ type-checks against the current API", () => {
    const docs = fs.readdirSync(path.join(root, "docs")).filter((name) => name.endsWith(".md"))
    const examples = [path.join(root, "README.md"), ...docs.map((name) => path.join(root, "docs", name))]
      .flatMap(markdownExamplesOf)
    expect(examples.length).toBeGreaterThan(10)
    expect(typeCheck(examples)).toEqual([])
  }, 120_000)
})
