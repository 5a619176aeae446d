/**
 * At most `size` tasks run at once; the others wait for a slot, first come first served. The
 * pipeline decides every alert in a slot: however many alerts the requests in flight hold, only
 * so many are between their first stage and their decision at a time (claims, Workflows being
 * built and sent, their promises), which is what bounds the memory a storm takes.
 */
export class Slots {
  private free: number;
  /** Waiters in arrival order; `head` is the next one (no Array#shift on a long queue). */
  private queue: (() => void)[] = [];
  private head = 0;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`slots: size must be a whole number ≥ 1, got ${size}`);
    this.free = size;
  }

  /** Tasks running now. */
  get busy(): number {
    return this.size - this.free;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    // Not an async function: a free slot (the usual case) costs one promise reaction, no more.
    if (this.free > 0) {
      this.free--;
      return this.settle(task);
    }
    return new Promise<void>((resolve) => this.queue.push(resolve)).then(() => this.settle(task));
  }

  /** Runs the task in the slot already taken, and gives the slot on when it settles. */
  private settle<T>(task: () => Promise<T>): Promise<T> {
    let running: Promise<T>;
    try {
      running = task();
    } catch (error) {
      this.release();
      return Promise.reject(error);
    }
    return running.then(
      (value) => {
        this.release();
        return value;
      },
      (error: unknown) => {
        this.release();
        throw error;
      },
    );
  }

  /** Hands the slot to the next waiter, or frees it. */
  private release(): void {
    if (this.head < this.queue.length) {
      const next = this.queue[this.head] as () => void;
      this.head++;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
        // A queue that never empties (requests competing for slots through a whole storm) drops
        // the waiters already handed on, instead of keeping every one: amortised O(1) per task.
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      next();
    } else this.free++;
  }
}

/**
 * `each` of every item, at most `width` at a time for this call, results in the items' order: a
 * group of 10,000 alerts is not 10,000 promises at once, and other requests' alerts get slots
 * between its own.
 */
export async function mapInSlices<T, R>(
  items: readonly T[],
  width: number,
  each: (item: T) => Promise<R>,
): Promise<R[]> {
  // A group no wider than a slice (a webhook's usual 1–20 alerts) needs no workers.
  if (items.length <= width) return Promise.all(items.map(each));
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await each(items[i] as T);
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < Math.min(width, items.length); w++) workers.push(worker());
  await Promise.all(workers);
  return results;
}
