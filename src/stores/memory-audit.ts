import { type AuditEntry, type DecisionRecord, folded, foldingKey } from '../decision.js';

/** The entry a fingerprint's repeats are folded into, while it is still in the trail. */
interface FoldNote {
  seq: number;
  key: string;
  count: number;
  firstAt: string;
}

/**
 * The in-memory audit trail: the newest maxLen entries, listed by their latest occurrence. A
 * repeat of a non-acting decision (SPEC §11) takes the entry it repeats out and adds it again at
 * the end, counted, as the Redis store does; any other entry of that fingerprint ends the folding.
 */
export class AuditTrail {
  /** Insertion-ordered: the oldest entry first. */
  private readonly entries = new Map<number, AuditEntry>();
  private readonly notes = new Map<string, FoldNote>();
  private seq = 0;

  push(entry: AuditEntry, maxLen: number): void {
    const capacity = Math.max(0, Math.floor(maxLen));
    const key = foldingKey(entry);
    const fingerprint = 'kind' in entry ? undefined : entry.fingerprint;
    let stored = entry;
    let count = 1;
    let firstAt = entry.at;
    const note = fingerprint === undefined ? undefined : this.notes.get(fingerprint);
    if (note && key !== undefined && note.key === key && this.entries.delete(note.seq)) {
      count = note.count + 1;
      firstAt = note.firstAt;
      stored = folded(entry as DecisionRecord, count, firstAt);
    }
    const seq = ++this.seq;
    this.entries.set(seq, stored);
    if (fingerprint !== undefined) {
      if (key === undefined) this.notes.delete(fingerprint);
      else this.notes.set(fingerprint, { seq, key, count, firstAt });
    }
    this.trim(capacity);
  }

  newest(limit: number): AuditEntry[] {
    const count = Math.min(Math.max(0, Math.floor(limit)), this.entries.size);
    if (count === 0) return [];
    return [...this.entries.values()].slice(-count).reverse();
  }

  /** A caller may change maxLen between appends: keep the newest entries that fit. */
  private trim(capacity: number): void {
    for (const [seq, entry] of this.entries) {
      if (this.entries.size <= capacity) return;
      this.entries.delete(seq);
      const fingerprint = 'kind' in entry ? undefined : entry.fingerprint;
      if (fingerprint !== undefined && this.notes.get(fingerprint)?.seq === seq) this.notes.delete(fingerprint);
    }
  }
}
