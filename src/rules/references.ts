import { type Alert, own } from '../alert.js';

/**
 * A rule argument's value may name the alert's labels and annotations, `{{ labels.NAME }}` and
 * `{{ annotations.NAME }}`: plain lookups, the only substitution there is (no code, no Argo
 * expressions). The loader refuses every other `{{`; the renderer substitutes these.
 */
const REFERENCE = /\{\{\s*(labels|annotations)\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g;

/** Why a rule argument's value holds an unacceptable `{{`, or null. */
export function referenceProblem(value: string): string | null {
  const rest = value.replace(REFERENCE, '');
  if (!rest.includes('{{')) return null;
  const other = /\{\{.*?\}\}/s.exec(rest);
  if (other !== null) {
    return `${JSON.stringify(other[0])} is not allowed: only {{ labels.NAME }} and {{ annotations.NAME }} are substituted`;
  }
  return 'has "{{" without a matching "}}"';
}

/**
 * The value with every reference replaced by the alert's label or annotation (empty when absent).
 * `check` sees each substituted value before it is pasted, to refuse what must not reach a Workflow.
 */
export function substituteReferences(
  value: string,
  alert: Alert,
  check: (scope: 'label' | 'annotation', name: string, substituted: string) => void,
): string {
  if (!value.includes('{{')) return value;
  return value.replace(REFERENCE, (_reference, scope: string, name: string) => {
    const labels = scope === 'labels';
    const substituted = own(labels ? alert.labels : alert.annotations, name) ?? '';
    check(labels ? 'label' : 'annotation', name, substituted);
    return substituted;
  });
}
