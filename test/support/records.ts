import type { DecisionRecord } from '../../src/decision.js';

/** An audit-trail record; the index rides in the time and the fingerprint, so records tell apart by content. */
export function auditRecord(index: number, start = 0): DecisionRecord {
  return {
    at: new Date(start + index).toISOString(),
    replica: 'replica-a',
    fingerprint: index.toString(16).padStart(16, '0'),
    alertname: 'KubePodCrashLooping',
    status: 'firing',
    rule: 'crashloop',
    priority: 'P3',
    outcome: 'submitted',
  };
}
