/**
 * The closed-loop fields of a rule's `remediation` (SPEC §9): how many Workflows one cooldown key
 * may get within a window before a person is called instead, whether a person approves each one
 * first, and the runbook its escalations link to.
 */
import { isScalar } from 'yaml';
import type { Rule } from './types.js';
import type { Field, FileValidator } from './yaml.js';

export const CLOSED_LOOP_FIELDS = [
  'max_attempts',
  'attempt_window',
  'approval',
  'approval_timeout',
  'runbook_url',
] as const;

export type ClosedLoop = Pick<
  Rule['remediation'],
  'maxAttempts' | 'attemptWindowMs' | 'approval' | 'approvalTimeoutMs' | 'runbookUrl'
>;

/** What a rule's remediation gets for the closed-loop fields it does not set (SPEC §9). */
export const REMEDIATION_DEFAULTS = {
  maxAttempts: 3,
  attemptWindowMs: 3600_000,
  approval: 'none',
  approvalTimeoutMs: 3600_000,
} as const satisfies Partial<Rule['remediation']>;

// Past this many Workflows for one key within the window the budget breaks no loop: it is a
// typo or a wish for no budget, which is written 0.
const MAX_ATTEMPTS_LIMIT = 1000;
// Attempts of one key are a cooldown (at least a second) apart: a shorter window never holds two.
const MIN_ATTEMPT_WINDOW_MS = 1_000;
// Nobody approves anything in less than a second.
const MIN_APPROVAL_TIMEOUT_MS = 1_000;
// A runbook link is copied into every Workflow and escalation of the rule; longer is not a link.
const RUNBOOK_URL_MAX = 2048;
const APPROVALS: readonly Rule['remediation']['approval'][] = ['none', 'required'];
// The URL parser drops tabs and newlines and trims spaces: text with them is not the link it reads as.
const BLANK = /[\s\p{Cc}]/u;

/** The value as written, for a message: `"3"` for a string, `2.5` for a number; '' for no scalar. */
function written(field: Field): string {
  if (!isScalar(field.value) || field.value.value === null) return '';
  const value = field.value.value;
  return ` ${typeof value === 'string' ? JSON.stringify(value) : (field.value.source ?? String(value))}`;
}

function maxAttempts(v: FileValidator, field: Field | undefined): number {
  if (field === undefined) return REMEDIATION_DEFAULTS.maxAttempts;
  const value = isScalar(field.value) ? field.value.value : undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_ATTEMPTS_LIMIT) return value;
  v.report(
    field.line,
    `remediation.max_attempts${written(field)} must be a whole number from 0 to ${MAX_ATTEMPTS_LIMIT} (0: no budget)`,
  );
  return REMEDIATION_DEFAULTS.maxAttempts;
}

function approval(v: FileValidator, field: Field | undefined): Rule['remediation']['approval'] | undefined {
  if (field === undefined) return REMEDIATION_DEFAULTS.approval;
  const value = isScalar(field.value) ? field.value.value : undefined;
  const known = APPROVALS.find((approval) => approval === value);
  if (known === undefined) v.report(field.line, `remediation.approval${written(field)} must be none or required`);
  return known;
}

function runbookUrl(v: FileValidator, field: Field | undefined): string | undefined {
  const text = v.string(field, 'remediation.runbook_url');
  if (text === undefined || field === undefined) return undefined;
  if (text.length > RUNBOOK_URL_MAX) {
    v.report(
      field.line,
      `remediation.runbook_url is ${text.length} characters long, more than the ${RUNBOOK_URL_MAX} allowed`,
    );
    return undefined;
  }
  const url = URL.canParse(text) && !BLANK.test(text) ? new URL(text) : null;
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.hostname === '') {
    v.report(
      field.line,
      `remediation.runbook_url ${JSON.stringify(text)} is not an http(s) URL (like https://runbooks.example.com/crashloop)`,
    );
    return undefined;
  }
  return text;
}

/** The closed-loop fields of one `remediation` mapping, defaults filled in; null when any is refused. */
export function parseClosedLoop(v: FileValidator, fields: ReadonlyMap<string, Field>): ClosedLoop | null {
  const before = v.problems.length;
  const approvalField = fields.get('approval');
  const timeoutField = fields.get('approval_timeout');
  const approved = approval(v, approvalField);
  const closedLoop: ClosedLoop = {
    maxAttempts: maxAttempts(v, fields.get('max_attempts')),
    attemptWindowMs: v.duration(
      fields.get('attempt_window'),
      'remediation.attempt_window',
      REMEDIATION_DEFAULTS.attemptWindowMs,
      MIN_ATTEMPT_WINDOW_MS,
    ),
    approval: approved ?? REMEDIATION_DEFAULTS.approval,
    approvalTimeoutMs: v.duration(
      timeoutField,
      'remediation.approval_timeout',
      REMEDIATION_DEFAULTS.approvalTimeoutMs,
      MIN_APPROVAL_TIMEOUT_MS,
    ),
  };
  // A refused approval has its own error, which says what to write.
  if (timeoutField !== undefined && approved !== undefined && approved !== 'required') {
    v.warn(
      timeoutField.line,
      'remediation.approval_timeout has no effect unless remediation.approval is required; it is ignored',
    );
  }
  const runbook = runbookUrl(v, fields.get('runbook_url'));
  if (runbook !== undefined) closedLoop.runbookUrl = runbook;
  return v.problems.length > before ? null : closedLoop;
}
