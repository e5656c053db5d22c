/**
 * @internal
 * What a key resolver can answer from memory, without an effect, kept for the resolver objects this library builds
 * (`TokenValidator.fromCache`, the static and shared-secret resolvers). The answers live beside the resolver, not on
 * it: a resolver made by spreading one of ours and replacing `get` (to refuse revoked key ids, say) is a new object
 * with no answers here, so the validator asks its `get` and never goes around it. One whose `get` is replaced in place
 * (`Object.assign`, a test's spy) answers no key from memory from then on; one whose `recordSuccess` is, records no
 * success from memory.
 */
import type { SigningAlgorithm, VerificationKey } from "../TokenValidator.js"

/** @internal */
export interface MemoryAnswers {
  /** The key, when a fresh set in memory has it (`now` in clock millis); `undefined` sends the validator to `get`. */
  readonly get: (kid: string | undefined, alg: SigningAlgorithm, now: number) => VerificationKey | undefined
  /** Records a success at once; `false` sends the validator to `recordSuccess`. */
  readonly recordSuccess: () => boolean
}

const answers = new WeakMap<object, MemoryAnswers>()

/** @internal */
export const register = <
  R extends { readonly get: unknown; readonly recordSuccess: unknown }
>(resolver: R, memory: MemoryAnswers): R => {
  const { get, recordSuccess } = resolver
  answers.set(resolver, {
    get: (kid, alg, now) => resolver.get === get ? memory.get(kid, alg, now) : undefined,
    recordSuccess: () => resolver.recordSuccess === recordSuccess && memory.recordSuccess()
  })
  return resolver
}

/** @internal */
export const of = (resolver: object): MemoryAnswers | undefined => answers.get(resolver)

const owners = new WeakMap<object, { readonly get: unknown; readonly recordSuccess: unknown }>()

/**
 * @internal
 * Notes that a key cache's `answer` (its `unsafeGet`) speaks for its `get` and `recordSuccess` as built: a copy of the
 * cache with a `get` of its own, or the cache with one put in place, is then asked through that `get`.
 */
export const registerOwner = (
  answer: object,
  own: { readonly get: unknown; readonly recordSuccess: unknown }
): void => {
  owners.set(answer, own)
}

/**
 * @internal
 * A check of whether `cache`'s answers from memory speak for its `get` and `recordSuccess` at the time of the call:
 * those it was built with, or any of a cache of the app's own (not built here). Looked up once, compared per call.
 */
export const answersFor = (
  cache: { readonly unsafeGet: object; readonly get: unknown; readonly recordSuccess: unknown }
): () => boolean => {
  const own = owners.get(cache.unsafeGet)
  return own === undefined ? () => true : () => cache.get === own.get && cache.recordSuccess === own.recordSuccess
}
