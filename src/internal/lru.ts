/**
 * @internal
 * A bounded map that forgets the least recently used entry first: a `Map` from keys to the nodes of a list in order of
 * use. A hit moves its node to the front and leaves the `Map` alone: re-inserting (delete, set) fills a `Map`'s table
 * with deleted slots that it rebuilds every few hundred hits, a cost measured at several times the rest of a remembered
 * token's validation.
 */
export class Lru<K, V> {
  private readonly nodes = new Map<K, Node<K, V>>()
  /** The most recently used, and the least. */
  private newest: Node<K, V> | undefined = undefined
  private oldest: Node<K, V> | undefined = undefined

  constructor(readonly capacity: number) {}

  get(key: K): V | undefined {
    if (this.capacity <= 0) return undefined
    const node = this.nodes.get(key)
    if (node === undefined) return undefined
    if (node !== this.newest) {
      this.unlink(node)
      this.pushNewest(node)
    }
    return node.value
  }

  set(key: K, value: V): void {
    if (this.capacity <= 0) return
    // An entry set again is a new node under the new key: the old node's key (an equal string) could be the one thing
    // keeping a large string alive (a slice of a token that was replaced).
    this.delete(key)
    const added: Node<K, V> = { key, value, newer: undefined, older: undefined }
    this.nodes.set(key, added)
    this.pushNewest(added)
    if (this.nodes.size > this.capacity) this.delete(this.oldest!.key)
  }

  /** Forgets the entry for `key`; with `only`, only if `only` is its value (not one set since). */
  delete(key: K, only?: V): void {
    const node = this.nodes.get(key)
    if (node === undefined || (only !== undefined && node.value !== only)) return
    this.nodes.delete(key)
    this.unlink(node)
  }

  get size(): number {
    return this.nodes.size
  }

  private unlink(node: Node<K, V>): void {
    if (node.newer === undefined) this.newest = node.older
    else node.newer.older = node.older
    if (node.older === undefined) this.oldest = node.newer
    else node.older.newer = node.newer
    node.newer = undefined
    node.older = undefined
  }

  private pushNewest(node: Node<K, V>): void {
    node.older = this.newest
    if (this.newest === undefined) this.oldest = node
    else this.newest.newer = node
    this.newest = node
  }
}

interface Node<K, V> {
  readonly key: K
  readonly value: V
  newer: Node<K, V> | undefined
  older: Node<K, V> | undefined
}
