/**
 * @internal
 * What a key resolver can answer from memory, without an effect, kept for the resolver objects this library builds
 * (`TokenValidator.fromCache`, the static and shared-secret resolvers). The answers live beside the resolver, not on
 * it: a resolver made by spreading one of ours and replacing `get` (to refuse revoked key ids, say) is a new object
 * with no answers here, so the validator asks its `get` and never goes around it. Ours are frozen, so that `get` cannot
 * be replaced in place (`Object.assign(resolver, { get })` throws) on an object that answers from memory.
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
export const register = <R extends object>(resolver: R, memory: MemoryAnswers): R => {
  answers.set(Object.freeze(resolver), memory)
  return resolver
}

/** @internal */
export const of = (resolver: object): MemoryAnswers | undefined => answers.get(resolver)
