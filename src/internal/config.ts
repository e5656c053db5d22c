/**
 * @internal
 * Configuration helpers the providers share.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/**
 * The values of a comma-separated list, at least one. Its errors' path is empty: the `mapOrFail` right on the named
 * value gets the variable's name from Config (naming it here too gave `OIDC_AUDIENCE.OIDC_AUDIENCE`; a second
 * `mapOrFail` on top gets no name at all).
 */
const splitList = (text: string): Either.Either<ReadonlyArray<string>, ConfigError.ConfigError> => {
  const items = text.split(",").map((item) => item.trim()).filter((item) => item.length > 0)
  if (items.length === 0) {
    return Either.left(ConfigError.InvalidData([], "expected a comma-separated list of at least one value"))
  }
  // Quotes an env file's loader kept (`docker --env-file`): an audience or issuer in them matches no token.
  const quoted = items.find(isQuoted)
  return quoted === undefined
    ? Either.right(items)
    : Either.left(ConfigError.InvalidData([], `expected values without quotes around them, got ${quoted.slice(0, 64)}`))
}

/**
 * @internal
 * Whether `text` is wrapped in a pair of matching quotes, as an env file read by a tool that keeps them hands a value
 * over (`KEY="value"` with `docker --env-file`).
 */
export const isQuoted = (text: string): boolean =>
  text.length >= 2 && (text[0] === "\"" || text[0] === "'") && text[text.length - 1] === text[0]

/** @internal A comma-separated list of at least one value, such as `OIDC_AUDIENCE=api-1,api-2`. */
export const list = (name: string): Config.Config<ReadonlyArray<string>> =>
  Config.string(name).pipe(Config.mapOrFail(splitList))

/** @internal A comma-separated list whose every value is one of `allowed`, such as `JWT_ALGORITHMS=HS256,HS512`. */
export const literalList = <const A extends string>(
  name: string,
  allowed: ReadonlyArray<A>
): Config.Config<ReadonlyArray<A>> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) =>
      Either.flatMap(splitList(text), (values) =>
        values.every((value) =>
            (allowed as ReadonlyArray<string>).includes(value)
          )
          ? Either.right(values as ReadonlyArray<A>)
          : Either.left(ConfigError.InvalidData([], `expected some of ${allowed.join(", ")}`)))
    )
  )

/**
 * @internal
 * The longest duration an option may give (a century): a `Date` a few hundred thousand years ahead is none.
 */
export const maxDurationMillis = 100 * 365.25 * 24 * 60 * 60 * 1000

/** @internal The longest delay a timer keeps (about 24.8 days): Effect's clock takes a longer sleep for "never". */
export const maxTimerMillis = 2 ** 31 - 1

/**
 * @internal
 * The most `Retry-After` seconds read or written (about 68 years): beyond it a number prints as `1e+21`, and the wait
 * is clamped far below it anyway.
 */
export const maxRetryAfterSeconds = 2 ** 31 - 1

/**
 * @internal
 * Whether a URL or issuer as given holds white space, control characters (C0, DEL and C1) or characters shown as
 * nothing (format characters such as a zero-width space pasted from a web page or a byte order mark, variation
 * selectors, a combining grapheme joiner): `new URL` trims, drops or percent-encodes them, but an issuer is compared
 * with tokens exactly, so a stray newline from an env file would refuse every token.
 */
export const hasSpaceOrControl = (text: string): boolean =>
  /[\s\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}]/u.test(text)

/**
 * @internal
 * What a base URL that a path is appended to (an issuer to discover from, a login host) must not hold, as given in
 * `text` and parsed in `url`: a query or a fragment (the appended path would land inside it), or a user name or
 * password (an issuer never has one, and it would reach logs). `undefined` when it holds none.
 */
export const baseUrlExtra = (text: string, url: URL): string | undefined => {
  if (text.includes("?")) return "a query"
  if (text.includes("#")) return "a fragment"
  if (url.username !== "" || url.password !== "" || /^[^/?#]*\/\/[^/?#]*@/.test(text)) return "a user name or password"
  return undefined
}

/**
 * @internal
 * A duration option, decoded without `Duration.decode`'s forgiveness: a negative or `NaN` number, a `"-5 minutes"`
 * string or a `[seconds, nanos]` pair with a negative or non-finite part is `None`, where Duration reads each as zero
 * (or worse), which would hide the mistake. Anything else as `Duration.decodeUnknown` reads it.
 */
export const decodeDuration = (input: unknown): Option.Option<Duration.Duration> => {
  if (typeof input === "number" && (Number.isNaN(input) || input < 0)) return Option.none()
  if (typeof input === "bigint" && input < 0n) return Option.none()
  if (typeof input === "string" && input.trim().startsWith("-")) return Option.none()
  if (
    Array.isArray(input) &&
    !(input.length === 2 && input.every((part) => typeof part === "number" && Number.isFinite(part) && part >= 0))
  ) return Option.none()
  return Duration.decodeUnknown(input)
}

/**
 * @internal
 * `Config.duration`, refusing what {@link decodeDuration} refuses: Effect's reads `"-30 seconds"` as zero, which
 * for a throttle means none.
 */
export const duration = (name: string): Config.Config<Duration.Duration> =>
  Config.nested(
    Config.string().pipe(
      Config.mapOrFail((text) =>
        Either.fromOption(
          decodeDuration(text),
          () =>
            ConfigError.InvalidData(
              [],
              `expected a duration of zero or more such as "20 minutes" (a number, a space, a unit), got ${
                JSON.stringify(text)
              }`
            )
        )
      )
    ),
    name
  )

/**
 * @internal
 * `Config.number` (`Config.integer` when `whole`), refusing a value that is empty or white space alone, which they read
 * as 0 (`Number("")`): a compose file's `${VAR}` of an unset variable leaves one, and "got 0" would not say so.
 */
export const number = (name: string, whole = false): Config.Config<number> =>
  Config.nested(
    Config.string().pipe(
      Config.mapOrFail((text) => {
        const value = Number(text)
        const kind = whole ? "a whole number" : "a number"
        return text.trim() === ""
          ? Either.left(ConfigError.InvalidData([], `expected ${kind}, got an empty value (unset it for the default)`))
          : Number.isNaN(value) || (whole && !Number.isInteger(value))
          ? Either.left(ConfigError.InvalidData([], `expected ${kind}, got ${JSON.stringify(text)}`))
          : Either.right(value)
      })
    ),
    name
  )

/**
 * @internal
 * A `ConfigError` of options checked after they were read, named by the variables they came from: the check names an
 * option (`interval`), the operator set `JWKS_CACHE_INTERVAL`. `names` maps each option to its variable's path.
 */
export const renameInvalid =
  (names: Readonly<Record<string, ReadonlyArray<string>>>) =>
  (error: ConfigError.ConfigError): ConfigError.ConfigError => {
    if (error._op !== "InvalidData" || error.path.length === 0) return error
    const renamed = names[error.path[0]!]
    return renamed === undefined ? error : ConfigError.InvalidData([...renamed, ...error.path.slice(1)], error.message)
  }

/**
 * @internal
 * A provider's `config`, its options checked as soon as they are read: a refusal is named by the variable its value
 * came from (`OIDC_ISSUER`), where the provider's `make` names the option (`issuer`). `variables` maps options to
 * variables, as {@link renameInvalid} takes them. `make` checks again: options built in code are checked there.
 */
export const checkedOnRead = <A>(
  config: Config.Config<A>,
  variables: Readonly<Record<string, ReadonlyArray<string>>>,
  check: (options: A) => Either.Either<unknown, ConfigError.ConfigError>
): Config.Config<A> =>
  Config.mapOrFail(
    config,
    (options) => Either.mapBoth(check(options), { onLeft: renameInvalid(variables), onRight: () => options })
  )
