import type { Alert } from '../alert.js';
import {
  DNS1123_LABEL,
  DNS1123_LABEL_MAX,
  DNS1123_SUBDOMAIN,
  DNS1123_SUBDOMAIN_MAX,
  envName,
  toLabelValue,
} from '../kube/names.js';
import {
  AnnotationKey,
  type EnvVar,
  INLINE_ENV,
  keyHash,
  LabelKey,
  MANAGED_BY,
  type Parameter,
  type ScriptTemplate,
  type Workflow,
  type WorkflowSpec,
} from '../kube/workflow.js';
import { substituteReferences } from '../rules/references.js';
import type { Rule } from '../rules/types.js';
import { workloadOf } from './cooldown-key.js';
import { DEFAULT_IMAGE, DEFAULT_INLINE_ACTION, INLINE_SCRIPTS } from './inline-actions.js';
import type { Target } from './stage.js';

/*
 * The Workflow for an alert under a rule (SPEC §5), in two pure halves: the parameters, which
 * come from the alert and are checked before anything is claimed, and the Workflow built from
 * them once the claim has given it its name. Everything that comes from the rule was checked by
 * the loader; what comes from the alert is checked here.
 */

export interface RenderSettings {
  workflowNamespace: string;
  workflowServiceAccount?: string | undefined;
}

/** The parameters, or why the alert cannot safely become a Workflow: the pipeline's `invalid_target`. */
export type ResolvedParameters = { ok: true; target: Target; parameters: Parameter[] } | { ok: false; reason: string };

export type RenderResult = { ok: true; workflow: Workflow } | { ok: false; reason: string };

/** Beyond this a parameter is log text, not a target; it would also bloat every Workflow object. */
const PARAMETER_VALUE_MAX = 4096;
const SCRATCH_VOLUME = 'tmp';
/** Longest excerpt of an offending value quoted in a reason: reasons go to logs and responses. */
const QUOTED_MAX = 80;
const INLINE_ENTRYPOINT = 'main';
const INLINE_DEADLINE_SECONDS = 600;
/** SPEC §5's TTLs, the least a Workflow is kept; a longer cooldown keeps it longer (ttlStrategy). */
const TTL_STRATEGY = {
  secondsAfterSuccess: 600,
  secondsAfterFailure: 86400,
  secondsAfterCompletion: 3600,
} as const;

class Refusal extends Error {}

function quoted(value: string): string {
  const excerpt = value.length > QUOTED_MAX ? `${value.slice(0, QUOTED_MAX)}…` : value;
  return JSON.stringify(excerpt);
}

/**
 * Argo expands `{{...}}` (and `{{=...}}` expressions) in a Workflow's fields; a value carrying
 * one could read other parameters or secrets of the workflow, so none may reach a parameter.
 */
function refuseUnsafeValue(what: string, value: string): void {
  if (value.includes('{{')) {
    throw new Refusal(`${what} contains "{{", which Argo would expand: ${quoted(value)}`);
  }
  if (value.length > PARAMETER_VALUE_MAX) {
    throw new Refusal(
      `${what} is ${value.length} characters long, more than the ${PARAMETER_VALUE_MAX} allowed in a parameter: ${quoted(value)}`,
    );
  }
}

/** The target labels become the workflow's kubectl arguments, so they must be names Kubernetes accepts. */
function targetLabel(alert: Alert, name: keyof Target, pattern: RegExp, max: number): string {
  const value = alert.labels[name] ?? '';
  if (value === '') return '';
  if (value.length > max) {
    throw new Refusal(
      `label "${name}" is not a valid Kubernetes name (${value.length} characters, at most ${max}): ${quoted(value)}`,
    );
  }
  if (!pattern.test(value)) throw new Refusal(`label "${name}" is not a valid Kubernetes name: ${quoted(value)}`);
  return value;
}

function resolve(alert: Alert, rule: Rule): { target: Target; parameters: Parameter[] } {
  const target: Target = {
    namespace: targetLabel(alert, 'namespace', DNS1123_LABEL, DNS1123_LABEL_MAX),
    pod: targetLabel(alert, 'pod', DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MAX),
    container: targetLabel(alert, 'container', DNS1123_LABEL, DNS1123_LABEL_MAX),
  };
  const alertname = alert.labels.alertname ?? '';
  refuseUnsafeValue('parameter "alertname"', alertname);
  const parameters: Parameter[] = [
    { name: 'namespace', value: target.namespace },
    { name: 'pod', value: target.pod },
    { name: 'container', value: target.container },
    { name: 'alertname', value: alertname },
    { name: 'priority', value: rule.priority },
    { name: 'rule', value: rule.name },
  ];
  for (const argument of rule.remediation.params.arguments) {
    const value = substituteReferences(argument.value, alert, (scope, name, substituted) =>
      refuseUnsafeValue(`${scope} "${name}" (argument "${argument.name}")`, substituted),
    );
    refuseUnsafeValue(`argument "${argument.name}"`, value);
    parameters.push({ name: argument.name, value });
  }
  return { target, parameters };
}

/**
 * The Workflow's parameters from the alert: namespace, pod, container, alertname, priority and
 * rule, then the rule's arguments with the alert's labels and annotations substituted. Refused
 * when a target label is not a valid Kubernetes name or a value could be read as an Argo expression.
 */
export function resolveParameters(alert: Alert, rule: Rule): ResolvedParameters {
  try {
    return { ok: true, ...resolve(alert, rule) };
  } catch (error) {
    if (error instanceof Refusal) return { ok: false, reason: error.message };
    throw error;
  }
}

function inlineTemplate(rule: Rule, parameters: readonly Parameter[]): ScriptTemplate {
  const params = rule.remediation.params;
  const env: EnvVar[] = Object.entries(INLINE_ENV).map(([name, value]) => ({ name, value }));
  // Argo substitutes each reference inside the env value, where no shell parses it.
  for (const { name } of parameters) env.push({ name: envName(name), value: `{{workflow.parameters.${name}}}` });
  return {
    name: INLINE_ENTRYPOINT,
    script: {
      image: params.image ?? DEFAULT_IMAGE,
      command: ['/bin/sh'],
      source: params.script ?? INLINE_SCRIPTS[params.inlineAction ?? DEFAULT_INLINE_ACTION],
      env,
      volumeMounts: [{ name: SCRATCH_VOLUME, mountPath: INLINE_ENV.HOME }],
      resources: {
        requests: { cpu: '50m', memory: '64Mi' },
        limits: { cpu: '500m', memory: '256Mi' },
      },
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65534,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      },
    },
  };
}

/**
 * How long the Workflow is kept once it completes: the cluster is the record of what was done
 * (SPEC §9), so a Workflow outlives its cooldown, and a cooldown Redis forgot is still honoured.
 */
function ttlStrategy(rule: Rule): WorkflowSpec['ttlStrategy'] {
  const cooldownSeconds = Math.ceil(rule.remediation.cooldownMs / 1000);
  return {
    secondsAfterSuccess: Math.max(TTL_STRATEGY.secondsAfterSuccess, cooldownSeconds),
    secondsAfterFailure: Math.max(TTL_STRATEGY.secondsAfterFailure, cooldownSeconds),
    secondsAfterCompletion: Math.max(TTL_STRATEGY.secondsAfterCompletion, cooldownSeconds),
  };
}

/**
 * What the watcher and the escalations read back from the Workflow alone, beside what SPEC §5
 * lists: the rule's name as written (its label is cut to label syntax), the workload, which
 * attempt it is, the approval timeout and the runbook.
 */
function annotationsOf(
  alert: Alert,
  rule: Rule,
  target: Target,
  cooldownKey: string,
  attempt: number | undefined,
  cluster: string | undefined,
): Record<string, string> {
  const annotations: Record<string, string> = {
    [AnnotationKey.AlertName]: alert.labels.alertname ?? '',
    [AnnotationKey.Fingerprint]: alert.fingerprint,
    [AnnotationKey.CooldownKey]: cooldownKey,
    [AnnotationKey.Target]: `${target.namespace}/${target.pod}`,
    [AnnotationKey.Rule]: rule.name,
    [AnnotationKey.Workload]: workloadOf(alert.labels) ?? '',
  };
  if (attempt !== undefined) annotations[AnnotationKey.Attempt] = String(attempt);
  if (cluster !== undefined) annotations[AnnotationKey.Cluster] = cluster;
  if (rule.remediation.approval === 'required')
    annotations[AnnotationKey.ApprovalTimeout] = String(Math.ceil(rule.remediation.approvalTimeoutMs / 1000));
  if (rule.remediation.runbookUrl !== undefined) annotations[AnnotationKey.RunbookUrl] = rule.remediation.runbookUrl;
  return annotations;
}

/**
 * The Workflow named `name`, from parameters resolveParameters accepted; `attempt` (which attempt
 * of the cooldown key's budget it is) and the cluster (with --clusters) are annotated when given.
 * Pure: same inputs, equal objects.
 */
export function buildWorkflow(
  alert: Alert,
  rule: Rule,
  resolved: { target: Target; parameters: Parameter[]; cluster?: string | undefined },
  settings: RenderSettings,
  cooldownKey: string,
  name: string,
  attempt?: number,
): Workflow {
  const params = rule.remediation.params;
  const spec: WorkflowSpec = { arguments: { parameters: resolved.parameters }, ttlStrategy: ttlStrategy(rule) };
  if (params.workflowTemplate !== undefined) {
    spec.workflowTemplateRef = params.clusterScope
      ? { name: params.workflowTemplate, clusterScope: true }
      : { name: params.workflowTemplate };
  } else {
    spec.entrypoint = INLINE_ENTRYPOINT;
    spec.templates = [inlineTemplate(rule, resolved.parameters)];
  }
  const serviceAccount = params.serviceAccount ?? settings.workflowServiceAccount;
  if (serviceAccount !== undefined) spec.serviceAccountName = serviceAccount;
  if (params.workflowTemplate === undefined) {
    // Inline pods are ours alone to clean up and bound; a template sets its own policy.
    spec.podGC = { strategy: 'OnPodCompletion' };
    spec.volumes = [{ name: SCRATCH_VOLUME, emptyDir: {} }];
    spec.activeDeadlineSeconds = INLINE_DEADLINE_SECONDS;
  }
  // Created suspended, it runs once a person resumes it (`argo resume`, Resume in the Argo UI).
  if (rule.remediation.approval === 'required') spec.suspend = true;
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Workflow',
    metadata: {
      name,
      namespace: params.namespace ?? settings.workflowNamespace,
      labels: {
        [LabelKey.ManagedBy]: MANAGED_BY,
        [LabelKey.Rule]: toLabelValue(rule.name),
        [LabelKey.Priority]: toLabelValue(rule.priority),
        [LabelKey.KeyHash]: keyHash(cooldownKey),
      },
      annotations: annotationsOf(alert, rule, resolved.target, cooldownKey, attempt, resolved.cluster),
    },
    spec,
  };
}

/** Both halves at once: the Workflow that remediates `alert` under `rule`, or why none can. */
export function renderWorkflow(
  alert: Alert,
  rule: Rule,
  settings: RenderSettings,
  cooldownKey: string,
  name: string,
  attempt?: number,
): RenderResult {
  const resolved = resolveParameters(alert, rule);
  if (!resolved.ok) return resolved;
  return { ok: true, workflow: buildWorkflow(alert, rule, resolved, settings, cooldownKey, name, attempt) };
}
