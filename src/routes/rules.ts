import { Type } from '@sinclair/typebox';
import { Priority } from '../decision.js';
import { formatDuration } from '../rules/duration.js';
import type { RuleSet } from '../rules/types.js';
import { ErrorBody } from './errors.js';
import type { App } from './typebox.js';

const OptionalName = Type.Union([Type.String(), Type.Null()]);

export const RulesAnswer = Type.Object({
  excluded_namespaces: Type.Array(Type.String()),
  rules: Type.Array(
    Type.Object({
      name: Type.String(),
      priority: Priority,
      enabled: Type.Boolean(),
      action: Type.Literal('trigger-argo-workflow'),
      template: OptionalName,
      cluster_scope: Type.Boolean(),
      workflow_name: OptionalName,
      cooldown: Type.String(),
      on_resolved: Type.Boolean(),
      /** `file:line` where the rule is defined. */
      source: Type.String(),
    }),
  ),
});

/** The rules in force, in evaluation order. */
export function ruleRoutes(app: App, rules: () => RuleSet): void {
  app.get('/v1/rules', { schema: { response: { 200: RulesAnswer, 401: ErrorBody } } }, async () => {
    const ruleSet = rules();
    return {
      excluded_namespaces: [...ruleSet.excludedNamespaces],
      rules: ruleSet.rules.map((rule) => ({
        name: rule.name,
        priority: rule.priority,
        enabled: rule.enabled,
        action: rule.remediation.action,
        template: rule.remediation.params.workflowTemplate ?? null,
        cluster_scope: rule.remediation.params.clusterScope,
        workflow_name: rule.remediation.params.workflowName ?? null,
        cooldown: formatDuration(rule.remediation.cooldownMs),
        on_resolved: rule.onResolved,
        source: `${rule.source.file}:${rule.source.line}`,
      })),
    };
  });
}
