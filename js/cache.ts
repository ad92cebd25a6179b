/** A small LRU map; `dispose` frees evicted values (e.g. ImageBitmap.close). */
export class LruCache<K, V> {
  private items = new Map<K, V>();

  constructor(private readonly capacity: number, private readonly dispose?: (value: V) => void) {}

  get(key: K): V | undefined {
    const value = this.items.get(key);
    if (value !== undefined) {
      this.items.delete(key);
      this.items.set(key, value);
    }
    return value;
  }

  has(key: K): boolean {
    return this.items.has(key);
  }

  set(key: K, value: V): void {
    const old = this.items.get(key);
    if (old !== undefined && old !== value) this.dispose?.(old);
    this.items.delete(key);
    this.items.set(key, value);
    while (this.items.size > this.capacity) {
      const oldest = this.items.keys().next().value as K;
      const evicted = this.items.get(oldest) as V;
      this.items.delete(oldest);
      this.dispose?.(evicted);
    }
  }

  clear(): void {
    if (this.dispose !== undefined) for (const v of this.items.values()) this.dispose(v);
    this.items.clear();
  }

  get size(): number {
    return this.items.size;
  }

  keys(): K[] {
    return [...this.items.keys()];
  }
}
