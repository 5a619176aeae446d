import type { Alert } from '../alert.js';
import type { Priority } from '../decision.js';

export type { Priority };

export type InlineAction = 'restart' | 'describe' | 'logs' | 'events' | 'diagnose';

export const INLINE_ACTIONS: readonly InlineAction[] = ['restart', 'describe', 'logs', 'events', 'diagnose'];

export interface LabelMatcher {
  name: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
  /** true when the alert's labels satisfy this matcher (a missing label is the empty string, as in Alertmanager). */
  matches(labels: Record<string, string>): boolean;
}

export interface WorkflowArgument {
  name: string;
  /** May hold `{{ labels.NAME }}` / `{{ annotations.NAME }}`, substituted at render time. */
  value: string;
}

/** `remediation.params` of a `trigger-argo-workflow` rule. Exactly one of workflowTemplate and workflowName is set. */
export interface TriggerParams {
  workflowTemplate?: string;
  clusterScope: boolean;
  workflowName?: string;
  /** Namespace the Workflow is created in; unset: the `--workflow-namespace` setting. */
  namespace?: string;
  serviceAccount?: string;
  arguments: WorkflowArgument[];
  image?: string;
  script?: string;
  inlineAction?: InlineAction;
}

export interface Rule {
  name: string;
  priority: Priority;
  enabled: boolean;
  onResolved: boolean;
  match: {
    /** RE2 source text, as written in the file. */
    pattern: string;
    labels: LabelMatcher[];
    /** Allow-list; empty means every namespace. */
    namespaces: string[];
    /** `!name` entries of `namespaces`. */
    excludedNamespaces: string[];
    /** `labels.X` / `annotations.X` paths the pattern looks at; empty: every label and annotation value. */
    fields: string[];
  };
  remediation: {
    action: 'trigger-argo-workflow';
    params: TriggerParams;
    cooldownMs: number;
    /** Label names forming the cooldown key; null: namespace + workload. */
    cooldownKey: string[] | null;
    /** Workflows per cooldown key within attemptWindowMs before decisions are `escalated` (0: no budget). Default 3. */
    maxAttempts: number;
    /** Default 1h. */
    attemptWindowMs: number;
    /** required: the Workflow is created suspended and waits for a person's `argo resume`. Default none. */
    approval: 'none' | 'required';
    /** A Workflow still awaiting approval this long after creation is stopped (`cancelled`). Default 1h. */
    approvalTimeoutMs: number;
    /** Linked from the escalations of this rule. */
    runbookUrl?: string;
  };
  /** Where the rule was defined, for messages. */
  source: { file: string; line: number };
}

/** A loaded, validated set of rules, ready for matching. Immutable: a reload builds a new one. */
export interface RuleSet {
  /** Every rule in evaluation order: P1 first, file order within a priority (disabled rules included, flagged). */
  readonly rules: readonly Rule[];
  /** Global `excluded_namespaces` (default `[kube-system]`). */
  readonly excludedNamespaces: readonly string[];
  /** Files the rules were read from. */
  readonly files: readonly string[];
  /** The first enabled rule that matches the alert, in evaluation order; null when none does. */
  match(alert: Alert): Rule | null;
}
