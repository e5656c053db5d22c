/**
 * The contestants. Each checks the signature, `iss`, `aud` and `exp` of a token, and is built with its library's
 * usual API and defaults. Each has its keys before anything is timed: loaded by `make`, or by the correctness check
 * that runs before the warm-up (the verifiers that fetch on first use).
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { JwtVerifier } from "aws-jwt-verify"
import { JwksCache, JwksSource, TokenValidator } from "effect-jwks"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { createVerifier } from "fast-jwt"
import buildGetJwks from "get-jwks"
import { createRemoteJWKSet, importJWK, jwtVerify } from "jose"
import jsonwebtoken from "jsonwebtoken"
import jwksRsa from "jwks-rsa"
import { createPublicKey, type JsonWebKey, type KeyObject, verify as nodeVerify, webcrypto } from "node:crypto"
import type { Alg, Fixture } from "./setup.js"

export type Verify = (token: string) => unknown

export interface Verifier {
  readonly name: string
  /** `sync` verifiers are called in a plain loop, `async` ones awaited one after the other. */
  readonly mode: "sync" | "async"
  readonly algorithms: ReadonlyArray<Alg>
  readonly verify: (alg: Alg) => Verify
  /** Facts worth reporting (how the keys were loaded, a refusal). */
  readonly notes: ReadonlyArray<string>
  readonly close?: () => Promise<void>
}

export interface Contestant {
  /** Short and stable: the key in results.json and the JWKS URL label. */
  readonly id: string
  readonly make: (fixture: Fixture) => Promise<Verifier>
}

const both: ReadonlyArray<Alg> = ["RS256", "ES256"]

class ClaimError extends Error {}

/** The claim checks of the two raw verifiers: what every library does at the least. */
const checkClaims = (fixture: Fixture) => (claims: { iss?: unknown; aud?: unknown; exp?: unknown }) => {
  if (claims.iss !== fixture.issuer) throw new ClaimError("iss")
  const aud = claims.aud
  if (aud !== fixture.audience && !(Array.isArray(aud) && aud.includes(fixture.audience))) throw new ClaimError("aud")
  if (typeof claims.exp !== "number" || claims.exp <= Date.now() / 1000) throw new ClaimError("exp")
  return claims
}

/** Splits a compact JWS at its two dots. */
const split = (token: string) => {
  const first = token.indexOf(".")
  const second = token.indexOf(".", first + 1)
  if (first <= 0 || second <= first || token.indexOf(".", second + 1) !== -1) throw new ClaimError("malformed")
  return {
    signingInput: token.slice(0, second),
    payload: token.slice(first + 1, second),
    signature: token.slice(second + 1)
  }
}

/** 1. `node:crypto.verify` with a ready `KeyObject`: the physical limit. */
const rawNode: Contestant = {
  id: "raw-node-crypto",
  make: async (fixture) => {
    const check = checkClaims(fixture)
    const keyOf = (alg: Alg): KeyObject | { key: KeyObject; dsaEncoding: "ieee-p1363" } => {
      const key = createPublicKey({ key: fixture.keys[alg].jwk as JsonWebKey, format: "jwk" })
      return alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" } : key
    }
    const keys = { RS256: keyOf("RS256"), ES256: keyOf("ES256") }
    return {
      name: "raw node:crypto.verify (KeyObject)",
      mode: "sync",
      algorithms: both,
      notes: [],
      verify: (alg) => {
        const key = keys[alg]
        return (token) => {
          const parts = split(token)
          const ok = nodeVerify(
            "sha256",
            Buffer.from(parts.signingInput),
            key,
            Buffer.from(parts.signature, "base64url")
          )
          if (!ok) throw new ClaimError("signature")
          return check(JSON.parse(Buffer.from(parts.payload, "base64url").toString("utf8")))
        }
      }
    }
  }
}

/**
 * 1b. The raw row's very work, called as `Effect.runPromise(Effect.sync(...))` per token: the fiber each call starts
 * and nothing else. No validation called this way (the form issue #5's targets name) can be faster.
 */
const rawNodeInRunPromise: Contestant = {
  id: "raw-node-crypto-runpromise",
  make: async (fixture) => {
    const raw = await rawNode.make(fixture)
    return {
      name: "raw node:crypto.verify in Effect.runPromise(Effect.sync(...))",
      mode: "async",
      algorithms: both,
      notes: ["the raw row's work through one Effect.runPromise per token: the most that call form can reach"],
      verify: (alg) => {
        const verify = raw.verify(alg)
        return (token) => Effect.runPromise(Effect.sync(() => verify(token)))
      }
    }
  }
}

/** 2. WebCrypto `crypto.subtle.verify` with a ready `CryptoKey`. */
const rawWebCrypto: Contestant = {
  id: "raw-webcrypto",
  make: async (fixture) => {
    const check = checkClaims(fixture)
    const params = {
      RS256: { import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, verify: { name: "RSASSA-PKCS1-v1_5" } },
      ES256: { import: { name: "ECDSA", namedCurve: "P-256" }, verify: { name: "ECDSA", hash: "SHA-256" } }
    } as const
    const importKey = (alg: Alg) =>
      webcrypto.subtle.importKey("jwk", fixture.keys[alg].jwk as webcrypto.JsonWebKey, params[alg].import, false, [
        "verify"
      ])
    const keys = { RS256: await importKey("RS256"), ES256: await importKey("ES256") }
    const encoder = new TextEncoder()
    return {
      name: "raw WebCrypto subtle.verify (CryptoKey)",
      mode: "async",
      algorithms: both,
      notes: [],
      verify: (alg) => {
        const key = keys[alg]
        const algorithm = params[alg].verify
        return async (token) => {
          const parts = split(token)
          const ok = await webcrypto.subtle.verify(
            algorithm,
            key,
            Buffer.from(parts.signature, "base64url"),
            encoder.encode(parts.signingInput)
          )
          if (!ok) throw new ClaimError("signature")
          return check(JSON.parse(Buffer.from(parts.payload, "base64url").toString("utf8")))
        }
      }
    }
  }
}

/** 3. jose `jwtVerify` with a key imported once. */
const joseLocal: Contestant = {
  id: "jose-local-key",
  make: async (fixture) => {
    const keys = {
      RS256: await importJWK(fixture.keys.RS256.jwk, "RS256"),
      ES256: await importJWK(fixture.keys.ES256.jwk, "ES256")
    }
    const options = { issuer: fixture.issuer, audience: fixture.audience, requiredClaims: ["exp"] }
    return {
      name: "jose jwtVerify (local key)",
      mode: "async",
      algorithms: both,
      notes: [],
      verify: (alg) => {
        const key = keys[alg]
        const withAlg = { ...options, algorithms: [alg] }
        return (token) => jwtVerify(token, key, withAlg)
      }
    }
  }
}

/** 4. jose `jwtVerify` with `createRemoteJWKSet` over the loopback URL. */
const joseRemote: Contestant = {
  id: "jose-remote-jwks",
  make: async (fixture) => {
    const keySet = createRemoteJWKSet(new URL(fixture.jwksUrl("jose-remote-jwks")))
    const options = {
      issuer: fixture.issuer,
      audience: fixture.audience,
      requiredClaims: ["exp"],
      algorithms: ["RS256", "ES256"]
    }
    return {
      name: "jose jwtVerify + createRemoteJWKSet",
      mode: "async",
      algorithms: both,
      notes: [],
      verify: () => (token) => jwtVerify(token, keySet, options)
    }
  }
}

/**
 * 5. aws-jwt-verify `JwtVerifier`: it fetches with `node:https` only, so an http JWKS is handed over with `cacheJwks`.
 * `verify` (async), and `verifySync`, which its README offers once the JWKS is cached, as it is here: the faster of the
 * two is the one issue #5's target 1 is judged against.
 */
const awsJwtVerify = (sync: boolean): Contestant => ({
  id: sync ? "aws-jwt-verify-sync" : "aws-jwt-verify",
  make: async (fixture) => {
    const jwksUri = fixture.jwksUrl(sync ? "aws-jwt-verify-sync" : "aws-jwt-verify")
    const verifier = JwtVerifier.create({ issuer: fixture.issuer, audience: fixture.audience, jwksUri })
    const notes: Array<string> = []
    try {
      await verifier.hydrate()
      notes.push(`fetched its JWKS from ${jwksUri}`)
    } catch (error) {
      notes.push(
        `refused the http JWKS URL (${error instanceof Error ? error.message : String(error)}); ` +
          "hydrated with cacheJwks(jwks) instead"
      )
      const response = await fetch(jwksUri)
      verifier.cacheJwks((await response.json()) as Parameters<typeof verifier.cacheJwks>[0])
    }
    return sync
      ? {
        name: "aws-jwt-verify JwtVerifier.verifySync",
        mode: "sync",
        algorithms: both,
        notes,
        verify: () => (token) => verifier.verifySync(token)
      }
      : {
        name: "aws-jwt-verify JwtVerifier",
        mode: "async",
        algorithms: both,
        notes,
        verify: () => (token) => verifier.verify(token)
      }
  }
})

/**
 * 6. jwks-rsa + jsonwebtoken, wired as their READMEs show (a `getKey` callback handing over the PEM, which
 * jsonwebtoken parses again for every token), and tuned: a `KeyObject` made once per kid.
 */
const jwksRsaJsonwebtoken = (tuned: boolean): Contestant => ({
  id: tuned ? "jwks-rsa-jsonwebtoken-keyobject" : "jwks-rsa-jsonwebtoken",
  make: async (fixture) => {
    const client = jwksRsa({
      jwksUri: fixture.jwksUrl(tuned ? "jwks-rsa-jsonwebtoken-keyobject" : "jwks-rsa-jsonwebtoken")
    })
    const keyObjects = new Map<string, KeyObject>()
    const getKey: jsonwebtoken.GetPublicKeyOrSecret = (header, callback) => {
      const known = tuned && header.kid !== undefined ? keyObjects.get(header.kid) : undefined
      if (known !== undefined) return callback(null, known)
      client.getSigningKey(header.kid, (error, key) => {
        if (error || key === undefined || !tuned) return callback(error, key?.getPublicKey())
        const keyObject = createPublicKey(key.getPublicKey())
        if (header.kid !== undefined) keyObjects.set(header.kid, keyObject)
        callback(null, keyObject)
      })
    }
    const options: jsonwebtoken.VerifyOptions = {
      issuer: fixture.issuer,
      audience: fixture.audience,
      algorithms: ["RS256", "ES256"]
    }
    return {
      name: tuned ? "jwks-rsa + jsonwebtoken, KeyObject per kid" : "jwks-rsa + jsonwebtoken",
      mode: "async",
      algorithms: both,
      notes: tuned
        ? ["getKey hands jsonwebtoken a KeyObject made once per kid (their READMEs hand it the PEM, parsed per token)"]
        : [],
      verify: () => (token) =>
        new Promise((resolve, reject) => {
          jsonwebtoken.verify(token, getKey, options, (error, payload) => (error ? reject(error) : resolve(payload)))
        })
    }
  }
})

/**
 * 7. fast-jwt `createVerifier` with a get-jwks key fetcher, with fast-jwt's token cache off or on; and, tuned, with the
 * key memoized per kid and alg (get-jwks caches the JWK but converts it to PEM on every call, for EC keys with the
 * slow `elliptic` package: milliseconds a token), or with the cache keyed by the token itself (`cacheKeyBuilder`, the
 * faster choice fast-jwt's README offers over its default SHA-256 of the token, with the risks it names).
 */
const fastJwt = (cache: boolean, tuned = false): Contestant => {
  const id = cache
    ? tuned ? "fast-jwt-get-jwks-cache-identity" : "fast-jwt-get-jwks-cache"
    : tuned
    ? "fast-jwt-get-jwks-memo"
    : "fast-jwt-get-jwks"
  return {
    id,
    make: async (fixture) => {
      const getJwks = buildGetJwks()
      const domain = fixture.baseUrl(id)
      const memo = new Map<string, Promise<string>>()
      const getKey = (kid: string, alg: string) => getJwks.getPublicKey({ kid, alg, domain })
      const verify = createVerifier({
        key: async ({ header }: { readonly header: Record<string, unknown> }) => {
          const [kid, alg] = [String(header.kid), String(header.alg)]
          if (!tuned || cache) return getKey(kid, alg)
          const known = memo.get(`${kid}/${alg}`)
          if (known !== undefined) return known
          const key = getKey(kid, alg)
          memo.set(`${kid}/${alg}`, key)
          return key
        },
        algorithms: ["RS256", "ES256"],
        allowedIss: fixture.issuer,
        allowedAud: fixture.audience,
        requiredClaims: ["exp"],
        cache,
        ...(cache && tuned ? { cacheKeyBuilder: (token: string) => token } : {})
      })
      return {
        name: `fast-jwt + get-jwks (cache ${cache ? "on" : "off"}${
          tuned ? cache ? ", keyed by the token itself" : ", key memoized per kid" : ""
        })`,
        mode: "async",
        algorithms: both,
        notes: cache
          ? [
            "fast-jwt's cache memoizes the result per token: repeated tokens skip verification" +
            (tuned ? "; keyed by the token itself (cacheKeyBuilder), not a SHA-256 of it" : "")
          ]
          : tuned
          ? ["the PEM get-jwks makes from the JWK is memoized per kid and alg (get-jwks converts it on every call)"]
          : [],
        verify: () => (token) => verify(token)
      }
    }
  }
}

/**
 * 8. effect-jwks: `TokenValidator` over `JwksCache` over `JwksSource.http`, built once in a `ManagedRuntime` and
 * called through the public API per token. Logs below Warning are dropped, so that background refreshes do not
 * print into the report. The rows that stand with the uncached peers turn the verified-token cache off
 * (`tokenCache: 0`), so that every validation checks a signature as theirs do; one row keeps it on, next to
 * fast-jwt's cache.
 */
const effectJwks = (variant: {
  readonly id: string
  readonly name: string
  readonly cache: JwksCache.Options
  readonly tokenCache: number
  /**
   * `runPromise`: `runtime.runPromise(validator.validate(token))` through the `ManagedRuntime` that built it;
   * `Effect.runPromise`: `Effect.runPromise(validator.validate(token))`, the form issue #5's targets name (the
   * validation needs no service, so the default runtime runs it); `toPromise`: `TokenValidator.toPromise`.
   */
  readonly call?: "runPromise" | "Effect.runPromise" | "toPromise"
  readonly notes?: ReadonlyArray<string>
}) => ({
  id: variant.id,
  make: async (fixture: Fixture): Promise<Verifier> => {
    const layer = TokenValidator.layer({
      issuer: fixture.issuer,
      audience: fixture.audience,
      algorithms: ["RS256", "ES256"],
      tokenCache: variant.tokenCache
    }).pipe(
      Layer.provide(JwksCache.layer(variant.cache)),
      Layer.provide(JwksSource.layerHttp(fixture.jwksUrl(variant.id))),
      Layer.provide(FetchHttpClient.layer),
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )
    const runtime = ManagedRuntime.make(layer)
    const validator = await runtime.runPromise(TokenValidator.TokenValidator)
    const validate = variant.call === "toPromise"
      ? TokenValidator.toPromise(await runtime.runtime())(validator)
      : variant.call === "Effect.runPromise"
      ? (token: string) => Effect.runPromise(validator.validate(token))
      : (token: string) => runtime.runPromise(validator.validate(token))
    return {
      name: variant.name,
      mode: "async",
      algorithms: both,
      notes: variant.notes ?? [],
      verify: () => validate,
      close: () => runtime.dispose()
    }
  }
})

/** Every contestant, the reference (`raw-node-crypto`) first. */
export const contestants: ReadonlyArray<Contestant> = [
  rawNode,
  rawNodeInRunPromise,
  rawWebCrypto,
  joseLocal,
  joseRemote,
  awsJwtVerify(false),
  awsJwtVerify(true),
  jwksRsaJsonwebtoken(false),
  jwksRsaJsonwebtoken(true),
  fastJwt(false),
  fastJwt(false, true),
  fastJwt(true),
  fastJwt(true, true),
  effectJwks({
    id: "effect-jwks-token-cache",
    name: "effect-jwks (verified-token cache)",
    cache: {},
    tokenCache: TokenValidator.defaults.tokenCache,
    notes: [
      `tokenCache ${TokenValidator.defaults.tokenCache} (the default) holds the whole pool; the default usage limit ` +
      "(1000) reloads the set about every 800 validations, each reload a JWKS fetch over a new loopback connection: " +
      "that is what separates this row from the time-only one (remembered tokens survive a reload, since an " +
      "unchanged key is carried over)"
    ]
  }),
  effectJwks({
    id: "effect-jwks-token-cache-time",
    name: "effect-jwks (verified-token cache, strategy: time)",
    cache: { strategy: "time" },
    tokenCache: TokenValidator.defaults.tokenCache,
    notes: [
      "the set lives 20 minutes, so after warm-up every validation is a remembered token: no signature check and " +
      "no decoding, but the time checks and the usage count still run"
    ]
  }),
  effectJwks({ id: "effect-jwks", name: "effect-jwks (cache defaults, tokenCache: 0)", cache: {}, tokenCache: 0 }),
  effectJwks({
    id: "effect-jwks-time",
    name: "effect-jwks (strategy: time, tokenCache: 0)",
    cache: { strategy: "time" },
    tokenCache: 0
  }),
  effectJwks({
    id: "effect-jwks-effect-runpromise-time",
    name: "effect-jwks Effect.runPromise (strategy: time, tokenCache: 0)",
    cache: { strategy: "time" },
    tokenCache: 0,
    call: "Effect.runPromise",
    notes: [
      "Effect.runPromise(validator.validate(token)), the call form of the issue's targets: the default runtime, where " +
      "the rows above run in the ManagedRuntime that built the validator (a few more fiber refs to copy per fiber)"
    ]
  }),
  effectJwks({
    id: "effect-jwks-effect-runpromise-token-cache-time",
    name: "effect-jwks Effect.runPromise (verified-token cache, strategy: time)",
    cache: { strategy: "time" },
    tokenCache: TokenValidator.defaults.tokenCache,
    call: "Effect.runPromise",
    notes: ["Effect.runPromise(validator.validate(token)) on repeated tokens: issue #5's target 2 in its call form"]
  }),
  effectJwks({
    id: "effect-jwks-promise-token-cache-time",
    name: "effect-jwks toPromise (verified-token cache, strategy: time)",
    cache: { strategy: "time" },
    tokenCache: TokenValidator.defaults.tokenCache,
    call: "toPromise",
    notes: ["TokenValidator.toPromise: a validation from memory starts no fiber"]
  }),
  effectJwks({
    id: "effect-jwks-promise-time",
    name: "effect-jwks toPromise (strategy: time, tokenCache: 0)",
    cache: { strategy: "time" },
    tokenCache: 0,
    call: "toPromise"
  })
]
