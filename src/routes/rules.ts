import { Type } from '@sinclair/typebox';
import { Priority } from '../decision.js';
import { formatDuration } from '../rules/duration.js';
import type { RuleSet } from '../rules/types.js';
import { ErrorBody } from './errors.js';
import type { App } from './typebox.js';

const OptionalString = Type.Union([Type.String(), Type.Null()]);

export const RulesAnswer = Type.Object({
  excluded_namespaces: Type.Array(Type.String()),
  rules: Type.Array(
    Type.Object({
      name: Type.String(),
      priority: Priority,
      enabled: Type.Boolean(),
      action: Type.Literal('trigger-argo-workflow'),
      template: OptionalString,
      cluster_scope: Type.Boolean(),
      workflow_name: OptionalString,
      cooldown: Type.String(),
      /** Workflows per cooldown key within attempt_window before decisions are `escalated`; 0: no budget. */
      max_attempts: Type.Integer({ minimum: 0 }),
      attempt_window: Type.String(),
      approval: Type.Union([Type.Literal('none'), Type.Literal('required')]),
      /** Null without approval: the timeout would have no effect. */
      approval_timeout: OptionalString,
      runbook_url: OptionalString,
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
        max_attempts: rule.remediation.maxAttempts,
        attempt_window: formatDuration(rule.remediation.attemptWindowMs),
        approval: rule.remediation.approval,
        approval_timeout:
          rule.remediation.approval === 'required' ? formatDuration(rule.remediation.approvalTimeoutMs) : null,
        runbook_url: rule.remediation.runbookUrl ?? null,
        on_resolved: rule.onResolved,
        source: `${rule.source.file}:${rule.source.line}`,
      })),
    };
  });
}
