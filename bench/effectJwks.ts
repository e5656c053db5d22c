/**
 * effect-jwks as the scenario scripts use it: `JwksSource.http` → `JwksCache.make` → `TokenValidator.make`, the
 * public constructors, built once in a scope of a `ManagedRuntime` (fetch-based `HttpClient`, logs below Warning
 * dropped) and called through `runPromise` per token, as an app outside Effect would.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { JwksCache, JwksSource, TokenValidator } from "effect-jwks"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"

export interface EffectJwksOptions {
  readonly jwksUrl: string
  readonly validator: TokenValidator.Options
  readonly cache: JwksCache.Options
  /** Wraps the HTTP source, to watch its fetches. */
  readonly wrapSource?: (source: JwksSource.Service) => JwksSource.Service
}

export interface EffectJwks {
  /** Resolves to `"ok"`, or the reason of the refusal: a `TokenValidationError` reason, or `JwksError <reason>`. */
  readonly attempt: (token: string) => Promise<string>
  readonly status: () => Promise<JwksCache.Status>
  /** Fetches the key set now (`JwksCache.refresh`). */
  readonly refresh: () => Promise<unknown>
  /** Closes the cache's scope (its background fiber stops) and the runtime. */
  readonly close: () => Promise<void>
}

const outcome = (validator: TokenValidator.Service, token: string): Effect.Effect<string> =>
  Effect.match(validator.validate(token), {
    onSuccess: () => "ok",
    onFailure: (error) => error._tag === "TokenValidationError" ? error.reason : `JwksError ${error.reason}`
  })

export const makeEffectJwks = async (options: EffectJwksOptions): Promise<EffectJwks> => {
  const runtime = ManagedRuntime.make(Layer.merge(FetchHttpClient.layer, Logger.minimumLogLevel(LogLevel.Warning)))
  const scope = await runtime.runPromise(Scope.make())
  const { cache, validator } = await runtime.runPromise(
    Effect.gen(function*() {
      const http = yield* JwksSource.http(options.jwksUrl)
      const source = options.wrapSource === undefined ? http : options.wrapSource(http)
      const cache = yield* JwksCache.make(source, options.cache)
      const validator = yield* TokenValidator.make(TokenValidator.fromCache(cache), options.validator)
      return { cache, validator }
    }).pipe(Scope.extend(scope))
  )
  return {
    attempt: (token) => runtime.runPromise(outcome(validator, token)),
    status: () => runtime.runPromise(cache.status),
    refresh: () => runtime.runPromise(cache.refresh),
    close: async () => {
      await runtime.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
    }
  }
}
