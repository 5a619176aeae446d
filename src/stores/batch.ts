/**
 * Collects the operations asked for during one turn of the event loop and hands them to `run`
 * together: the alerts of one request (and of the requests read in the same turn) claim their
 * cooldown keys, or append their audit records, in one Redis command instead of one each. Each
 * caller still gets its own result; when the batch fails, every caller gets the error.
 */
export class Batcher<Item, Result> {
  private items: Item[] = [];
  private waiters: { resolve: (result: Result) => void; reject: (error: unknown) => void }[] = [];
  private scheduled = false;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    /** Must answer one result per item, in order. */
    private readonly run: (items: Item[]) => Promise<Result[]>,
    /** A batch never holds more; a larger burst goes out as several commands. */
    private readonly maxItems: number,
  ) {}

  add(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.items.push(item);
      this.waiters.push({ resolve, reject });
      if (this.items.length >= this.maxItems) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        // After the current turn's callbacks and microtasks: every alert of a request gets there.
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Sends what is waiting now and resolves when every batch sent so far has its answer (for close). */
  async drain(): Promise<void> {
    this.flush();
    await Promise.allSettled([...this.inFlight]);
  }

  private flush(): void {
    if (this.items.length === 0) return;
    const items = this.items;
    const waiters = this.waiters;
    this.items = [];
    this.waiters = [];
    let answer: Promise<Result[]>;
    try {
      answer = this.run(items);
    } catch (error) {
      answer = Promise.reject(error);
    }
    const settled = answer.then(
      (results) => {
        if (results.length !== waiters.length) {
          const error = new Error(`batch of ${waiters.length} got ${results.length} results`);
          for (const waiter of waiters) waiter.reject(error);
          return;
        }
        for (const [i, waiter] of waiters.entries()) waiter.resolve(results[i] as Result);
      },
      (error: unknown) => {
        for (const waiter of waiters) waiter.reject(error);
      },
    );
    this.inFlight.add(settled);
    // settled never rejects: both outcomes were handed to the waiters above.
    const forget = (): void => {
      this.inFlight.delete(settled);
    };
    settled.then(forget, forget);
  }
}
