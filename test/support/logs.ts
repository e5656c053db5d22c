/** Test support: a logger that keeps each entry, with the line Effect's default (string) logger would write for it. */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

export interface Entry {
  readonly level: string
  /** The message parts, joined by a space. */
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
  /** `Cause.pretty` of the attached cause, if any. */
  readonly cause: string | undefined
  /** The whole line as the default logger writes it. */
  readonly line: string
}

/** Keeps every entry from Debug up, in place of the default logger, for the effects passed to `use`. */
export const capturing = () => {
  const entries: Array<Entry> = []
  const logger = Logger.make((options) => {
    const messages: ReadonlyArray<unknown> = Array.isArray(options.message) ? options.message : [options.message]
    entries.push({
      level: options.logLevel.label,
      message: messages.map(String).join(" "),
      annotations: Object.fromEntries(HashMap.toEntries(options.annotations)),
      cause: Cause.isEmpty(options.cause) ? undefined : Cause.pretty(options.cause),
      line: Logger.stringLogger.log(options)
    })
  })
  const layer = Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.Debug))
  const use = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, layer)
  return { entries, use }
}

/** What ends a log line or passes for another: C0 and C1 controls, DEL, the Unicode line and paragraph separators. */
export const lineBreaking = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/
