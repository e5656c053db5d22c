/**
 * Edge cases pinned after a mutation-testing review: how two `Principal`s compare (`Equal`), which the suite left
 * unpinned (each test fails on one mutation of `src/Principal.ts` that the rest of the suite does not catch).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Equal from "effect/Equal"
import * as Hash from "effect/Hash"
import { Principal } from "../src/Principal.js"

describe("mutation review (internals)", () => {
  const principal = (claims: Record<string, unknown>) =>
    new Principal({
      id: "alice",
      name: undefined,
      email: undefined,
      groups: [],
      scopes: [],
      tokenType: "access",
      clientId: undefined,
      isMachine: false,
      issuer: "https://review.example.test",
      expiresAt: new Date(3_600_000),
      claims
    })
  /** Whether two Principals that differ only in their claim `x` are Equal. */
  const sameWith = (x: unknown, y: unknown) => Equal.equals(principal({ x }), principal({ x: y }))

  // Mutation in `Principal.ts`'s `sameContent`: `(x !== x && y !== y)` -> `(x !== x || y !== y)`. NaN is itself, and
  // nothing else.
  it("a claim of NaN equals NaN only", () => {
    expect([sameWith(Number.NaN, Number.NaN), sameWith(Number.NaN, 1), sameWith(1, Number.NaN)])
      .toEqual([true, false, false])
  })

  // Mutations in `sameContent`: drop `typeof y !== "object"`, drop `y === null`. An object against `null` (as a JSON
  // claim may hold) or `undefined` is unequal, not a defect of the comparison.
  it("an object claim against null or undefined is unequal, and no defect", () => {
    expect([sameWith({}, null), sameWith({ a: 1 }, undefined), sameWith([], null), sameWith(null, {})])
      .toEqual([false, false, false, false])
  })

  // Mutation in `sameContent`: `seen.get(x)?.has(y) === true` -> `seen.has(x)`. An object held twice is compared
  // with each value the other Principal holds in its places, not only with the first.
  it("an object held in two places is compared with what the other holds in each", () => {
    const twice = () => {
      const shared = { n: 1 }
      return principal({ a: shared, b: shared })
    }
    expect(Equal.equals(twice(), principal({ a: { n: 2 }, b: { n: 1 } }))).toBe(false)
    expect(Equal.equals(twice(), principal({ a: { n: 1 }, b: { n: 2 } }))).toBe(false)
    expect(Equal.equals(twice(), principal({ a: { n: 1 }, b: { n: 1 } }))).toBe(true)
  })

  // Mutation in `sameContent`: `(seen.get(x) ?? new Set()).add(y)` -> `new Set([y])`. Claims holding cycles of
  // different lengths that unfold alike are Equal, and the comparison ends: a pair seen before, with any of the
  // values it was paired with, is not compared again (the mutant loops without end here).
  it("claims holding cycles of different lengths that unfold alike are Equal", () => {
    const one: Record<string, unknown> = {}
    one.a = one
    one.b = one
    const first: Record<string, unknown> = {}
    const second: Record<string, unknown> = { a: first, b: first }
    first.a = second
    first.b = second
    expect([sameWith(one, first), sameWith(first, one)]).toEqual([true, true])
  })

  // Mutations in `sameContent`: drop `!Equal.isEqual(x) && !Equal.isEqual(y)`, or only its `!Equal.isEqual(y)`. A
  // plain object with an equality of its own is compared by `Equal.equals`, whatever its members: one that refuses
  // its twin is unequal to it, and one without an equality never equals one with.
  it("a plain object with an equality of its own is compared by it, members alike or not", () => {
    const refusing = () => ({ v: 1, [Equal.symbol]: () => false, [Hash.symbol]: () => 0 })
    const agreeing = { v: 1, [Equal.symbol]: () => true, [Hash.symbol]: () => 0 }
    expect([sameWith(refusing(), refusing()), sameWith({ v: 1 }, agreeing)]).toEqual([false, false])
  })

  // Mutation in `sameContent`: `hasDataEquality(x) && hasDataEquality(y)` -> `||`. A `Data.struct` and a plain
  // object of the same members are not Equal (as `Equal.equals` has it); two `Data.struct`s are.
  it("a Data struct never equals a plain object of the same members", () => {
    expect([
      sameWith(Data.struct({ a: 1 }), { a: 1 }),
      sameWith({ a: 1 }, Data.struct({ a: 1 })),
      sameWith(Data.struct({ a: 1 }), Data.struct({ a: 1 }))
    ]).toEqual([false, false, true])
  })

  // Mutation in `isPlain`: drop `prototype === null`. An object without a prototype is plain: compared member by
  // member.
  it("objects without a prototype are compared by their members", () => {
    const bare = (a: number) => Object.assign(Object.create(null) as object, { a })
    expect([sameWith(bare(1), bare(1)), sameWith(bare(1), bare(2))]).toEqual([true, false])
  })

  // Mutation: `that instanceof Principal && sameContent(this, that)` -> `sameContent(this, that)`. An instance of
  // another class with the same fields, even one whose hash and equality agree with the Principal, is not Equal to it.
  it("a Principal is never Equal to a look-alike of another class", () => {
    const original = principal({ sub: "alice" })
    class LookAlike {
      constructor(fields: object) {
        Object.assign(this, fields)
      }
      [Equal.symbol]() {
        return true
      }
      [Hash.symbol]() {
        return Hash.hash(original)
      }
    }
    expect(Equal.equals(original, new LookAlike({ ...original }))).toBe(false)
  })
})
