import type { Rule, RuleSet } from '../rules/types.js';
import type { Alert } from './alert.js';
import { decide, type Decision } from './decision.js';
import { Outcome } from './outcome.js';

/**
 * Stage 1: which rule, if any, acts on this alert. Excluded namespaces are decided before any
 * rule is tried; resolved alerts stop here unless the rule opts in with on_resolved.
 */
export function matchStage(alert: Alert, ruleSet: RuleSet): Decision | Rule {
  const namespace = alert.labels.namespace;
  if (namespace !== undefined && ruleSet.excludedNamespaces.includes(namespace)) {
    return decide(alert, null, Outcome.Excluded, { reason: `namespace ${namespace} is excluded` });
  }
  const rule = ruleSet.match(alert);
  if (!rule) return decide(alert, null, Outcome.NoMatch);
  if (alert.status === 'resolved' && !rule.onResolved) {
    return decide(alert, rule, Outcome.Resolved, { reason: 'alert is resolved; the rule does not set on_resolved' });
  }
  return rule;
}
