import { decide } from '../decision.js';
import { resolveParameters } from './render.js';
import type { Keyed, Stage, Targeted } from './stage.js';

/**
 * The labels that become the Workflow's parameters, checked before anything is claimed: an alert
 * that cannot safely become a Workflow is `invalid_target` and never holds a cooldown.
 */
export const validateTarget: Stage<Keyed, Targeted> = (draft) => {
  const resolved = resolveParameters(draft.alert, draft.rule);
  if (!resolved.ok) {
    return decide(draft.alert, draft.rule, 'invalid_target', {
      cooldownKey: draft.cooldownKey,
      reason: resolved.reason,
    });
  }
  return { ...draft, target: resolved.target, parameters: resolved.parameters };
};
