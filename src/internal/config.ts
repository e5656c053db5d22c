/**
 * @internal
 * Configuration helpers the providers share.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Either from "effect/Either"

/** @internal A comma-separated list of at least one value, such as `OIDC_AUDIENCE=api-1,api-2`. */
export const list = (name: string): Config.Config<ReadonlyArray<string>> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => {
      const items = text.split(",").map((item) => item.trim()).filter((item) => item.length > 0)
      return items.length === 0
        ? Either.left(ConfigError.InvalidData([name], "expected a comma-separated list of at least one value"))
        : Either.right(items)
    })
  )

/** @internal A comma-separated list whose every value is one of `allowed`, such as `JWT_ALGORITHMS=HS256,HS512`. */
export const literalList = <const A extends string>(
  name: string,
  allowed: ReadonlyArray<A>
): Config.Config<ReadonlyArray<A>> =>
  list(name).pipe(
    Config.mapOrFail((values) =>
      values.every((value) => (allowed as ReadonlyArray<string>).includes(value))
        ? Either.right(values as ReadonlyArray<A>)
        : Either.left(ConfigError.InvalidData([name], `expected some of ${allowed.join(", ")}`))
    )
  )
