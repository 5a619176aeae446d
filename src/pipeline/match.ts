import { decide } from '../decision.js';
import { ESCALATION_ALERTNAMES } from '../remediation/model.js';
import { cooldownKey } from './cooldown-key.js';
import type { Keyed, Matched, Received, Stage } from './stage.js';

const ESCALATIONS: ReadonlySet<string> = new Set(ESCALATION_ALERTNAMES);

/**
 * Which rule, if any, acts on this alert. Excluded namespaces are decided before any rule is
 * tried; resolved alerts stop here unless the rule opts in with on_resolved.
 */
export const matchRule: Stage<Received, Matched> = (draft) => {
  const { alert, ruleSet } = draft;
  const namespace = alert.labels.namespace;
  if (namespace !== undefined && ruleSet.excludedNamespaces.includes(namespace)) {
    return decide(alert, null, 'excluded', { reason: `namespace ${namespace} is excluded` });
  }
  // Kube Sentinel's own escalations, routed back to it by an Alertmanager route that catches
  // everything, must never be remediated: their text (Argo's failure message) can match a rule,
  // and each remediation that failed would start another.
  if (ESCALATIONS.has(alert.labels.alertname ?? '')) {
    return decide(alert, null, 'no_match', { reason: "Kube Sentinel's own escalation is never remediated" });
  }
  const rule = ruleSet.match(alert);
  if (!rule) return decide(alert, null, 'no_match');
  if (alert.status === 'resolved' && !rule.onResolved) {
    return decide(alert, rule, 'resolved', { reason: 'alert is resolved; the rule does not set on_resolved' });
  }
  return { ...draft, rule };
};

/** The key the rule's cooldown is claimed under (see cooldownKey). */
export const keyCooldown: Stage<Matched, Keyed> = (draft) => ({
  ...draft,
  cooldownKey: cooldownKey(draft.alert, draft.rule, draft.cluster),
});
