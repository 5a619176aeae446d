import type { Alert } from './alert.js';
import type { Rule } from '../rules/types.js';
import {
  AnnotationKey,
  LabelKey,
  MANAGED_BY,
  type EnvVar,
  type Parameter,
  type ScriptTemplate,
  type Workflow,
  type WorkflowSpec,
} from '../kube/workflow.js';
import { DEFAULT_IMAGE, DEFAULT_INLINE_ACTION, INLINE_SCRIPTS } from './inline-actions.js';

export interface RenderSettings {
  workflowNamespace: string;
  workflowServiceAccount?: string;
}

/** `ok: false` means the alert cannot safely become a Workflow: the pipeline's `invalid_target`. */
export type RenderResult = { ok: true; workflow: Workflow } | { ok: false; reason: string };

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
/** The CRD's pattern for parameter names; the API server refuses any other. */
const PARAMETER_NAME = /^[-a-zA-Z0-9_]+$/;
const DNS1123_LABEL_MAX = 63;
const DNS1123_SUBDOMAIN_MAX = 253;
const LABEL_VALUE_MAX = 63;
/** Beyond this a parameter is log text, not a target; it would also bloat every Workflow object. */
const PARAMETER_VALUE_MAX = 4096;
const SCRATCH_VOLUME = 'tmp';
const SCRATCH_DIR = '/tmp';
/** Longest excerpt of an offending value quoted in a reason: reasons go to logs and responses. */
const QUOTED_MAX = 80;

/** `{{ labels.NAME }}` / `{{ annotations.NAME }}`: plain lookups, the only substitution a rule argument gets. */
const ALERT_REFERENCE = /\{\{\s*(labels|annotations)\.([^\s{}]+)\s*\}\}/g;

const INLINE_ENTRYPOINT = 'main';

const TTL_STRATEGY = {
  secondsAfterSuccess: 600,
  secondsAfterFailure: 86400,
  secondsAfterCompletion: 3600,
} as const;

const INLINE_DEADLINE_SECONDS = 600;

class RenderRefusal extends Error {}

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
    throw new RenderRefusal(`${what} contains "{{", which Argo would expand: ${quoted(value)}`);
  }
  if (value.length > PARAMETER_VALUE_MAX) {
    throw new RenderRefusal(
      `${what} is ${value.length} characters long, more than the ${PARAMETER_VALUE_MAX} allowed in a parameter: ${quoted(value)}`,
    );
  }
}

/** The target labels become the workflow's kubectl arguments, so they must be names Kubernetes accepts. */
function targetLabel(
  labels: Record<string, string>,
  name: 'namespace' | 'pod' | 'container',
  pattern: RegExp,
  max: number,
): string {
  const value = labels[name] ?? '';
  if (value === '') return '';
  if (value.length > max) {
    throw new RenderRefusal(
      `label "${name}" is not a valid Kubernetes name (${value.length} characters, at most ${max}): ${quoted(value)}`,
    );
  }
  if (!pattern.test(value)) {
    throw new RenderRefusal(`label "${name}" is not a valid Kubernetes name: ${quoted(value)}`);
  }
  return value;
}

function substituteAlertReferences(alert: Alert, argumentName: string, template: string): string {
  const value = template.replace(ALERT_REFERENCE, (_reference, scope: string, key: string) => {
    const source = scope === 'labels' ? alert.labels : alert.annotations;
    // Own properties only: a reference such as `labels.constructor` must not reach Object.prototype.
    const substituted = Object.hasOwn(source, key) ? (source[key] ?? '') : '';
    refuseUnsafeValue(`${scope === 'labels' ? 'label' : 'annotation'} "${key}" (argument "${argumentName}")`, substituted);
    return substituted;
  });
  refuseUnsafeValue(`argument "${argumentName}"`, value);
  return value;
}

/** A Kubernetes label value from arbitrary text, e.g. a rule name with spaces. */
function labelValue(text: string): string {
  if (text.length <= LABEL_VALUE_MAX && LABEL_VALUE.test(text)) return text;
  return text
    .replace(/[^-A-Za-z0-9_.]+/g, '-')
    .slice(0, LABEL_VALUE_MAX)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

/** Shell-usable: `my-arg` → `MY_ARG`; a leading digit would not be a variable name. */
export function envName(parameterName: string): string {
  const name = parameterName.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

function parametersOf(alert: Alert, rule: Rule, target: { namespace: string; pod: string; container: string }): Parameter[] {
  const builtIn: Parameter[] = [
    { name: 'namespace', value: target.namespace },
    { name: 'pod', value: target.pod },
    { name: 'container', value: target.container },
    { name: 'alertname', value: alert.labels['alertname'] ?? '' },
    { name: 'priority', value: rule.priority },
    { name: 'rule', value: rule.name },
  ];
  for (const parameter of builtIn.slice(3)) refuseUnsafeValue(`parameter "${parameter.name}"`, parameter.value);

  const taken = new Set(builtIn.map((parameter) => parameter.name));
  const extra = rule.remediation.params.arguments.map((argument): Parameter => {
    if (!PARAMETER_NAME.test(argument.name)) {
      throw new RenderRefusal(
        `argument ${quoted(argument.name)} of rule "${rule.name}" is not a valid Argo parameter name (letters, digits, "-" and "_")`,
      );
    }
    if (taken.has(argument.name)) {
      throw new RenderRefusal(`argument "${argument.name}" of rule "${rule.name}" is defined twice or shadows a built-in parameter`);
    }
    taken.add(argument.name);
    return { name: argument.name, value: substituteAlertReferences(alert, argument.name, argument.value) };
  });
  return [...builtIn, ...extra];
}

function inlineTemplate(rule: Rule, parameters: Parameter[]): ScriptTemplate {
  const params = rule.remediation.params;
  const source = params.script ?? INLINE_SCRIPTS[params.inlineAction ?? DEFAULT_INLINE_ACTION];
  if (source.includes('{{')) {
    throw new RenderRefusal(
      `script of rule "${rule.name}" contains "{{": Argo would paste values into the script text; read them from environment variables instead`,
    );
  }
  // The root filesystem is read-only: kubectl keeps its cache under $HOME, an emptyDir at /tmp.
  const env: EnvVar[] = [{ name: 'HOME', value: SCRATCH_DIR }];
  const envNames = new Map<string, string>([['HOME', 'HOME']]);
  for (const parameter of parameters) {
    const name = envName(parameter.name);
    const clash = envNames.get(name);
    if (clash !== undefined) {
      throw new RenderRefusal(`arguments "${clash}" and "${parameter.name}" of rule "${rule.name}" both become environment variable ${name}`);
    }
    envNames.set(name, parameter.name);
    // Argo substitutes the reference inside the env value, where no shell parses it.
    env.push({ name, value: `{{workflow.parameters.${parameter.name}}}` });
  }
  return {
    name: INLINE_ENTRYPOINT,
    script: {
      image: params.image ?? DEFAULT_IMAGE,
      command: ['/bin/sh'],
      source,
      env,
      volumeMounts: [{ name: SCRATCH_VOLUME, mountPath: SCRATCH_DIR }],
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
 * The Workflow that remediates `alert` under `rule` (SPEC §5). Pure: no I/O, same inputs give
 * the same object. Refuses (ok: false) when a label that would become a parameter is not a
 * valid Kubernetes name or a value could be read as an Argo expression.
 */
export function renderWorkflow(
  alert: Alert,
  rule: Rule,
  settings: RenderSettings,
  cooldownKey: string,
  name: string,
): RenderResult {
  try {
    return { ok: true, workflow: buildWorkflow(alert, rule, settings, cooldownKey, name) };
  } catch (error) {
    if (error instanceof RenderRefusal) return { ok: false, reason: error.message };
    throw error;
  }
}

function buildWorkflow(alert: Alert, rule: Rule, settings: RenderSettings, cooldownKey: string, name: string): Workflow {
  const params = rule.remediation.params;
  const target = {
    namespace: targetLabel(alert.labels, 'namespace', DNS1123_LABEL, DNS1123_LABEL_MAX),
    pod: targetLabel(alert.labels, 'pod', DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MAX),
    container: targetLabel(alert.labels, 'container', DNS1123_LABEL, DNS1123_LABEL_MAX),
  };
  const parameters = parametersOf(alert, rule, target);

  const spec: WorkflowSpec = { arguments: { parameters }, ttlStrategy: { ...TTL_STRATEGY } };
  if (params.workflowTemplate !== undefined) {
    spec.workflowTemplateRef = params.clusterScope
      ? { name: params.workflowTemplate, clusterScope: true }
      : { name: params.workflowTemplate };
  } else {
    spec.entrypoint = INLINE_ENTRYPOINT;
    spec.templates = [inlineTemplate(rule, parameters)];
  }
  const serviceAccount = params.serviceAccount ?? settings.workflowServiceAccount;
  if (serviceAccount !== undefined) spec.serviceAccountName = serviceAccount;
  if (params.workflowTemplate === undefined) {
    // Inline pods are ours alone to clean up and bound; a template sets its own policy.
    spec.podGC = { strategy: 'OnPodCompletion' };
    spec.volumes = [{ name: SCRATCH_VOLUME, emptyDir: {} }];
    spec.activeDeadlineSeconds = INLINE_DEADLINE_SECONDS;
  }

  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Workflow',
    metadata: {
      name,
      namespace: params.namespace ?? settings.workflowNamespace,
      labels: {
        [LabelKey.ManagedBy]: MANAGED_BY,
        [LabelKey.Rule]: labelValue(rule.name),
        [LabelKey.Priority]: labelValue(rule.priority),
      },
      annotations: {
        [AnnotationKey.AlertName]: alert.labels['alertname'] ?? '',
        [AnnotationKey.Fingerprint]: alert.fingerprint,
        [AnnotationKey.CooldownKey]: cooldownKey,
        [AnnotationKey.Target]: `${target.namespace}/${target.pod}`,
      },
    },
    spec,
  };
}
