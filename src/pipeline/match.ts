import { decide } from '../decision.js';
import { cooldownKey } from './cooldown-key.js';
import type { Keyed, Matched, Received, Stage } from './stage.js';

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
  cooldownKey: cooldownKey(draft.alert, draft.rule),
});
