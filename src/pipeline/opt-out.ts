import { decide } from '../decision.js';
import { OPT_OUT_ANNOTATION, OPT_OUT_VALUE, type OptOuts, type OptOutTarget } from '../kube/opt-out.js';
import { workloadRefOf } from './cooldown-key.js';
import type { Stage, Targeted } from './stage.js';

/** What the alert is about, as opt-outs are looked up: nothing without a namespace. */
function targetOf(draft: Targeted): OptOutTarget | null {
  const { namespace } = draft.target;
  if (namespace === '') return null;
  const workload = workloadRefOf(draft.alert.labels);
  return workload ? { namespace, workload } : { namespace };
}

/**
 * SPEC §11: a target whose Namespace or workload is annotated `kube-sentinel.io/remediation:
 * disabled` is `excluded`, the reason naming the object. Placed before the claim, so an excluded
 * alert holds no cooldown. One that could not be read fails closed: `retry` (503), and
 * Alertmanager asks again. Without a cluster (dry-run, offline explain and test) nothing is
 * looked up.
 */
export function checkOptOut(optOuts: OptOuts | undefined): Stage<Targeted, Targeted> {
  if (!optOuts) return (draft) => draft;
  return async (draft) => {
    const target = targetOf(draft);
    if (!target) return draft;
    const answer = await optOuts.check(target, draft.cluster);
    if (answer.kind === 'remediate') return draft;
    const { alert, rule, cooldownKey } = draft;
    if (answer.kind === 'opted_out') {
      return decide(alert, rule, 'excluded', {
        cooldownKey,
        reason: `${answer.object} has ${OPT_OUT_ANNOTATION}: ${OPT_OUT_VALUE}`,
      });
    }
    return decide(alert, rule, 'retry', {
      cooldownKey,
      reason: `cannot read ${answer.object} to see whether it opted out of remediation (${OPT_OUT_ANNOTATION}): ${answer.reason}`,
      ...(answer.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: answer.retryAfterSeconds }),
    });
  };
}
