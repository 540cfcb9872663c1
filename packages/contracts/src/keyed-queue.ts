/**
 * Runs the work of one key one item after another, in the order it was queued, and the
 * work of different keys side by side. A failed item fails for its caller only: the next
 * item of its key runs all the same. A key is forgotten as soon as its queue is empty, so
 * a queue keyed by short-lived ids (alerts, customers) does not grow without end.
 *
 * Written here, not taken from npm: async-lock, the common keyed lock, keys by string, by
 * default refuses a key's work beyond 1000 waiting items, ships no types and cannot tell
 * when everything queued has settled (what a service's `stop` waits for); p-lock never
 * forgets a key; p-queue and p-limit limit concurrency overall, not per key.
 */
export class KeyedQueue<K> {
  /** Per key with work queued: the last item, settled either way. */
  readonly #tails = new Map<K, Promise<void>>();

  /**
   * Queues `work` behind the key's earlier work; settles as the work does. The work
   * starts on a later tick even when the key is idle, so it never runs inside the
   * caller's own synchronous code.
   */
  run<T>(key: K, work: () => Promise<T>): Promise<T> {
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(() => work());
    const tail: Promise<void> = result.then(
      () => this.#forget(key, tail),
      () => this.#forget(key, tail),
    );
    this.#tails.set(key, tail);
    return result;
  }

  /** Settles once all work queued so far has (work queued meanwhile is not waited for). */
  async idle(): Promise<void> {
    await Promise.all(this.#tails.values());
  }

  /** How many keys have work queued or running. */
  get size(): number {
    return this.#tails.size;
  }

  #forget(key: K, tail: Promise<void>) {
    if (this.#tails.get(key) === tail) this.#tails.delete(key);
  }
}
