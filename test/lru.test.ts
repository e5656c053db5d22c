import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { Lru } from "../src/internal/lru.js"

/**
 * What the verified-token cache's `Lru` must hold after any sequence of uses, by the plainest model: an array of keys,
 * least recently used first.
 */
class Model {
  readonly order: Array<number> = []
  readonly values = new Map<number, string>()
  constructor(readonly capacity: number) {}
  get(key: number) {
    if (this.capacity <= 0 || !this.values.has(key)) return undefined
    this.touch(key)
    return this.values.get(key)
  }
  set(key: number, value: string) {
    if (this.capacity <= 0) return
    this.values.set(key, value)
    this.touch(key)
    if (this.order.length > this.capacity) this.values.delete(this.order.shift()!)
  }
  delete(key: number, only?: string) {
    if (only !== undefined && this.values.get(key) !== only) return
    this.values.delete(key)
    const at = this.order.indexOf(key)
    if (at >= 0) this.order.splice(at, 1)
  }
  private touch(key: number) {
    const at = this.order.indexOf(key)
    if (at >= 0) this.order.splice(at, 1)
    this.order.push(key)
  }
}

const operation = fc.oneof(
  fc.record({ op: fc.constant("get" as const), key: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    op: fc.constant("set" as const),
    key: fc.integer({ min: 0, max: 7 }),
    value: fc.oneof(fc.constantFrom("a", "b", ""), fc.string())
  }),
  fc.record({ op: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    op: fc.constant("deleteOnly" as const),
    key: fc.integer({ min: 0, max: 7 }),
    value: fc.constantFrom("a", "b", "")
  })
)

describe("Lru", () => {
  it("holds, answers and forgets what the model does, in any sequence of uses", () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.array(operation, { maxLength: 60 }),
        fc.nat(5),
        (capacity, operations, newcomers) => {
          const lru = new Lru<number, string>(capacity)
          const model = new Model(capacity)
          for (const o of operations) {
            if (o.op === "get") expect(lru.get(o.key)).toBe(model.get(o.key))
            else if (o.op === "set") lru.set(o.key, o.value), model.set(o.key, o.value)
            else if (o.op === "delete") lru.delete(o.key), model.delete(o.key)
            else lru.delete(o.key, o.value), model.delete(o.key, o.value)
            expect(lru.size).toBe(model.values.size)
          }
          // New keys push out the oldest in the model's order; then every key answers as the model says (each get
          // touches both alike).
          for (let i = 0; i < newcomers; i++) lru.set(100 + i, "new"), model.set(100 + i, "new")
          for (const key of [0, 1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 103, 104]) expect(lru.get(key)).toBe(model.get(key))
        }
      ),
      { numRuns: 2000 }
    ))

  it("forgets the least recently used entry first, a hit counting as a use", () => {
    const lru = new Lru<string, number>(3)
    lru.set("a", 1)
    lru.set("b", 2)
    lru.set("c", 3)
    expect(lru.get("a")).toBe(1) // b is the least recently used now
    lru.set("d", 4)
    expect(lru.get("b")).toBeUndefined()
    lru.set("c", 30) // set again: a use, with the new value
    lru.set("e", 5) // forgets a
    expect([lru.get("a"), lru.get("c"), lru.get("d"), lru.get("e")]).toEqual([undefined, 30, 4, 5])
  })
})
