import type { RuleSet } from '../rules/types.js';
import { getWorkflowTemplate, type KubeconfigSource, loadKubeConfig } from './client.js';
import { OPT_OUT_ANNOTATION } from './opt-out.js';
import { classifyKubeError } from './result.js';
import { ARGO_GROUP, ARGO_VERSION } from './workflow.js';

/** One finding of `kube-sentinel check`: what was checked, whether it holds, and how to fix it when not. */
export interface CheckResult {
  ok: boolean;
  what: string;
  /** Why it failed, one line. */
  problem?: string;
  /** The command or RBAC rule that fixes it. */
  fix?: string;
}

/** The cluster questions `check` asks; the real one talks to the API server, tests may give their own. */
export interface ClusterProbe {
  /** 'found', 'missing', or an error line (403 included). */
  template(ref: {
    name: string;
    namespace?: string;
    clusterScope: boolean;
  }): Promise<'found' | 'missing' | { error: string; status?: number }>;
  /** SelfSubjectAccessReview for VERB workflows.argoproj.io in the namespace. */
  mayAccessWorkflows(namespace: string, verb: WorkflowVerb): Promise<boolean | { error: string }>;
  /** SelfSubjectAccessReview of any resource attributes. */
  mayAccess(attributes: ResourceAttributes): Promise<boolean | { error: string }>;
  /** The API server answers, and serves Argo's API (its discovery document): true, or the error. */
  reachable?(): Promise<true | { error: string; status?: number }>;
}

/**
 * What a SelfSubjectAccessReview asks: VERB on RESOURCE of GROUP ('' is the core group), in
 * NAMESPACE (absent: in every namespace, or cluster-scoped), of the object NAME (absent: any).
 */
export interface ResourceAttributes {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

/**
 * What the receiver does with the Workflows of a target namespace besides creating them (SPEC §9):
 * list, watch and get them to record what became of each, and patch one to stop it
 * (spec.shutdown: Stop) when its approval times out or its alert resolves.
 */
export const WATCH_VERBS = ['get', 'list', 'watch', 'patch'] as const;
export type WorkflowVerb = 'create' | (typeof WATCH_VERBS)[number];

interface TemplateRef {
  name: string;
  namespace?: string;
  clusterScope: boolean;
  rules: string[];
}

/** Every template and target namespace the enabled rules use, deduplicated. */
export function clusterNeeds(
  ruleSet: RuleSet,
  workflowNamespace: string,
): { templates: TemplateRef[]; namespaces: Map<string, string[]> } {
  const templates = new Map<string, TemplateRef>();
  const namespaces = new Map<string, string[]>();
  for (const rule of ruleSet.rules) {
    if (!rule.enabled) continue;
    const params = rule.remediation.params;
    const namespace = params.namespace ?? workflowNamespace;
    namespaces.set(namespace, [...(namespaces.get(namespace) ?? []), rule.name]);
    if (!params.workflowTemplate) continue;
    const key = params.clusterScope ? `cluster/${params.workflowTemplate}` : `${namespace}/${params.workflowTemplate}`;
    const ref = templates.get(key) ?? {
      name: params.workflowTemplate,
      clusterScope: params.clusterScope,
      rules: [],
      ...(params.clusterScope ? {} : { namespace }),
    };
    ref.rules.push(rule.name);
    templates.set(key, ref);
  }
  return { templates: [...templates.values()], namespaces };
}

export interface CheckIdentity {
  /** `system:serviceaccount:NS:NAME` when known (in a pod), for the `kubectl auth can-i --as` hint. */
  user?: string;
}

/** The integration guide's "workflow not triggering" steps, as data. */
export async function checkTemplates(
  ruleSet: RuleSet,
  workflowNamespace: string,
  probe: ClusterProbe,
): Promise<CheckResult[]> {
  const { templates } = clusterNeeds(ruleSet, workflowNamespace);
  return Promise.all(
    templates.map(async (ref): Promise<CheckResult> => {
      const kind = ref.clusterScope ? 'ClusterWorkflowTemplate' : 'WorkflowTemplate';
      const where = ref.clusterScope ? ref.name : `${ref.namespace}/${ref.name}`;
      const what = `${kind} ${where} (rules: ${ref.rules.join(', ')})`;
      const found = await probe.template(ref);
      if (found === 'found') return { ok: true, what };
      if (found === 'missing') {
        return {
          ok: false,
          what,
          problem: `${kind} ${where} does not exist`,
          fix: ref.clusterScope
            ? `kubectl apply -f ${ref.name}.yaml (a ClusterWorkflowTemplate named ${ref.name}); see: kubectl get clusterworkflowtemplates`
            : `helm upgrade --install kube-sentinel helm/kube-sentinel --set workflowTemplates.enabled=true --set workflow.namespace=${ref.namespace}, or kubectl apply -n ${ref.namespace} -f ${ref.name}.yaml; see: kubectl get workflowtemplates -n ${ref.namespace}`,
        };
      }
      const resource = ref.clusterScope ? 'clusterworkflowtemplates' : 'workflowtemplates';
      return {
        ok: false,
        what,
        problem: `cannot read ${kind} ${where}: ${found.error}`,
        fix:
          found.status === 403
            ? `grant get on ${resource}.argoproj.io${ref.clusterScope ? ' (a ClusterRole)' : ` in namespace ${ref.namespace}`}: rules: [{apiGroups: [argoproj.io], resources: [${resource}], verbs: [get, list]}]`
            : 'check that the Kubernetes API server is reachable and Argo Workflows is installed (kubectl api-resources --api-group=argoproj.io)',
      };
    }),
  );
}

/** The `--as` of the `kubectl auth can-i` commands a failure prints: the identity checked. */
function asHint(identity: CheckIdentity): string {
  return identity.user
    ? ` --as=${identity.user}`
    : ' --as=system:serviceaccount:<namespace>:<kube-sentinel service account>';
}

export async function checkPermissions(
  ruleSet: RuleSet,
  workflowNamespace: string,
  probe: ClusterProbe,
  identity: CheckIdentity = {},
): Promise<CheckResult[]> {
  const { namespaces } = clusterNeeds(ruleSet, workflowNamespace);
  const as = asHint(identity);
  const perNamespace = await Promise.all(
    [...namespaces.entries()].map(([namespace, rules]) =>
      Promise.all([checkCreate(namespace, rules, probe, as), checkWatch(namespace, rules, probe, as)]),
    ),
  );
  return perNamespace.flat();
}

async function checkCreate(namespace: string, rules: string[], probe: ClusterProbe, as: string): Promise<CheckResult> {
  const what = `create workflows.argoproj.io in namespace ${namespace} (rules: ${rules.join(', ')})`;
  const allowed = await probe.mayAccessWorkflows(namespace, 'create');
  if (allowed === true) return { ok: true, what };
  return {
    ok: false,
    what,
    problem:
      allowed === false
        ? `the receiver may not create workflows in ${namespace}`
        : `access review failed: ${allowed.error}`,
    fix: `add a Role in ${namespace} with rules: [{apiGroups: [argoproj.io], resources: [workflows], verbs: [create]}] bound to the receiver's ServiceAccount (the chart's rbac.extraWorkflowNamespaces does this); verify: kubectl auth can-i create workflows.argoproj.io -n ${namespace}${as}`,
  };
}

/** One result for the four verbs: they are granted together, by one rule, for one reason. */
async function checkWatch(namespace: string, rules: string[], probe: ClusterProbe, as: string): Promise<CheckResult> {
  const what = `get, list, watch and patch workflows.argoproj.io in namespace ${namespace} (rules: ${rules.join(', ')})`;
  const answers = await Promise.all(
    WATCH_VERBS.map(async (verb) => ({ verb, allowed: await probe.mayAccessWorkflows(namespace, verb) })),
  );
  const denied = answers.filter((answer) => answer.allowed === false).map((answer) => answer.verb);
  const failed = answers.flatMap((answer) =>
    typeof answer.allowed === 'object' ? [`access review of ${answer.verb} failed: ${answer.allowed.error}`] : [],
  );
  if (denied.length === 0 && failed.length === 0) return { ok: true, what };
  const problems = [
    ...(denied.length > 0
      ? [
          `the receiver may not ${denied.join(', ')} workflows in ${namespace}: it needs get, list and watch to follow what became of the Workflows it creates, and patch to stop one whose approval expired or whose alert resolved`,
        ]
      : []),
    ...failed,
  ];
  const unsure = answers.filter((answer) => answer.allowed !== true).map((answer) => answer.verb);
  const verify =
    unsure.length === 1
      ? `kubectl auth can-i ${unsure[0]} workflows.argoproj.io -n ${namespace}${as}`
      : `for verb in ${unsure.join(' ')}; do kubectl auth can-i $verb workflows.argoproj.io -n ${namespace}${as}; done`;
  return {
    ok: false,
    what,
    problem: problems.join('; '),
    fix: `add to the receiver's Role in ${namespace} the rule {apiGroups: [argoproj.io], resources: [workflows], verbs: [get, list, watch, patch]} (the chart's Role has it in workflow.namespace and each of rbac.extraWorkflowNamespaces: upgrade the chart); verify: ${verify}`,
  };
}

/** The objects whose annotation opts out of remediation (SPEC §11), as RBAC names them. */
const OPT_OUT_RESOURCES = [
  { group: '', resource: 'namespaces' },
  { group: 'apps', resource: 'deployments' },
  { group: 'apps', resource: 'statefulsets' },
  { group: 'apps', resource: 'daemonsets' },
] as const;

/**
 * The namespaces alerts can be remediated in: when every enabled rule has an allow-list
 * (`match.namespaces`), the namespaces they list; otherwise every namespace (null).
 */
function alertNamespaces(ruleSet: RuleSet): Map<string, string[]> | null {
  const enabled = ruleSet.rules.filter((rule) => rule.enabled);
  if (enabled.some((rule) => rule.match.namespaces.length === 0)) return null;
  const namespaces = new Map<string, string[]>();
  for (const rule of enabled) {
    for (const namespace of rule.match.namespaces) {
      if (ruleSet.excludedNamespaces.includes(namespace)) continue;
      namespaces.set(namespace, [...(namespaces.get(namespace) ?? []), rule.name]);
    }
  }
  return namespaces;
}

/**
 * SPEC §11: the receiver may get the Namespace and the Deployments, StatefulSets and DaemonSets
 * of every namespace alerts come from, to read their opt-out annotation. One result per namespace
 * when every rule names its namespaces, else one for every namespace.
 */
export async function checkOptOutReads(
  ruleSet: RuleSet,
  probe: ClusterProbe,
  identity: CheckIdentity = {},
): Promise<CheckResult[]> {
  const as = asHint(identity);
  const namespaces = alertNamespaces(ruleSet);
  if (namespaces === null) return [await checkOptOutRead(undefined, [], probe, as)];
  return Promise.all([...namespaces].map(([namespace, rules]) => checkOptOutRead(namespace, rules, probe, as)));
}

/** Where a read was denied, as a person says it: a Namespace by its name, the others in one. */
function deniedWhere(named: string, namespace: string | undefined): string {
  if (named === 'namespaces') return namespace === undefined ? 'namespaces' : `namespace ${namespace}`;
  return namespace === undefined ? `${named} in every namespace` : `${named} in namespace ${namespace}`;
}

async function checkOptOutRead(
  namespace: string | undefined,
  rules: string[],
  probe: ClusterProbe,
  as: string,
): Promise<CheckResult> {
  // Namespaces are cluster-scoped: one is read by its name, never "in" a namespace.
  const reads =
    namespace === undefined
      ? 'get namespaces, and deployments, statefulsets, daemonsets.apps in every namespace'
      : `get namespace ${namespace}, and deployments, statefulsets, daemonsets.apps in namespace ${namespace}`;
  const ruleNames = rules.length === 0 ? '' : `; rules: ${rules.join(', ')}`;
  const what = `${reads} (opt-out annotations${ruleNames})`;
  const answers = await Promise.all(
    OPT_OUT_RESOURCES.map(async ({ group, resource }) => {
      const attributes: ResourceAttributes =
        resource === 'namespaces'
          ? { verb: 'get', group, resource, ...(namespace === undefined ? {} : { namespace, name: namespace }) }
          : { verb: 'get', group, resource, ...(namespace === undefined ? {} : { namespace }) };
      const named = group === '' ? resource : `${resource}.${group}`;
      return { named, allowed: await probe.mayAccess(attributes) };
    }),
  );
  const denied = answers.filter((answer) => answer.allowed === false).map((answer) => answer.named);
  const failed = answers.flatMap((answer) =>
    typeof answer.allowed === 'object' ? [`access review of get ${answer.named} failed: ${answer.allowed.error}`] : [],
  );
  if (denied.length === 0 && failed.length === 0) return { ok: true, what };
  const problems = [
    ...(denied.length > 0
      ? [
          `the receiver may not get ${denied.map((named) => deniedWhere(named, namespace)).join(', ')}: it reads the ${OPT_OUT_ANNOTATION} annotation there, and an alert whose Namespace or workload it cannot read is decided retry (503)`,
        ]
      : []),
    ...failed,
  ];
  const unsure = answers.filter((answer) => answer.allowed !== true).map((answer) => answer.named);
  const scope = namespace === undefined ? ' --all-namespaces' : ` -n ${namespace}`;
  const verify = unsure
    .map((named) =>
      named === 'namespaces'
        ? `kubectl auth can-i get namespaces${namespace === undefined ? '' : `/${namespace}`}${as}`
        : `kubectl auth can-i get ${named}${scope}${as}`,
    )
    .join('; ');
  return {
    ok: false,
    what,
    problem: problems.join('; '),
    fix: `add to the receiver's ClusterRole the rules {apiGroups: [""], resources: [namespaces], verbs: [get, list, watch]} and {apiGroups: [apps], resources: [deployments, statefulsets, daemonsets], verbs: [get, list, watch]} (the chart's ClusterRole has them: upgrade the chart); verify: ${verify}`,
  };
}

/**
 * With --clusters, before anything else of a cluster: whether its API server answers at all, so
 * that one unreachable cluster is one failure naming it, not a failure per template and namespace.
 */
export async function checkReachable(probe: ClusterProbe, server: string): Promise<CheckResult> {
  const what = `the API server ${server} answers and serves ${ARGO_GROUP}/${ARGO_VERSION}`;
  const answer = probe.reachable ? await probe.reachable() : true;
  if (answer === true) return { ok: true, what };
  return {
    ok: false,
    what,
    problem: `cannot reach the API server ${server}: ${answer.error}`,
    fix:
      answer.status === 404
        ? `install Argo Workflows in this cluster (its CRDs); see: kubectl api-resources --api-group=${ARGO_GROUP}`
        : `check the kubeconfig's server, credentials and network; verify: kubectl get --raw /apis/${ARGO_GROUP}/${ARGO_VERSION}`,
  };
}

/** One line from a failed client call, with its HTTP status when there is one. */
function statusOf(err: unknown): { error: string; status?: number } {
  const { reason, status } = classifyKubeError(err);
  return status === undefined ? { error: reason } : { error: reason, status };
}

/** A question `check` asks the API server gets this long before it counts as a timeout. */
const CHECK_TIMEOUT_MS = 10_000;

/** The ClusterProbe that asks the real API server (read-only, plus SelfSubjectAccessReview, which changes nothing). */
export async function kubeProbe(
  source: Exclude<KubeconfigSource, { kind: 'none' }>,
): Promise<ClusterProbe & { user?: string; warnings: string[]; server: string }> {
  const { request, warnings, server } = await loadKubeConfig(source);
  const namespace = process.env.POD_NAMESPACE;
  const serviceAccount = process.env.SERVICE_ACCOUNT_NAME;
  return {
    warnings,
    server,
    async reachable() {
      try {
        await request('GET', `/apis/${ARGO_GROUP}/${ARGO_VERSION}`, undefined, AbortSignal.timeout(CHECK_TIMEOUT_MS));
        return true;
      } catch (err) {
        return statusOf(err);
      }
    },
    ...(namespace && serviceAccount ? { user: `system:serviceaccount:${namespace}:${serviceAccount}` } : {}),
    async template(ref) {
      try {
        await getWorkflowTemplate(
          request,
          { name: ref.name, namespace: ref.namespace ?? '', clusterScope: ref.clusterScope },
          AbortSignal.timeout(CHECK_TIMEOUT_MS),
        );
        return 'found';
      } catch (err) {
        const status = statusOf(err);
        return status.status === 404 ? 'missing' : status;
      }
    },
    mayAccessWorkflows(ns, verb) {
      return mayAccess({ namespace: ns, verb, group: ARGO_GROUP, resource: 'workflows' });
    },
    mayAccess,
  };

  async function mayAccess(attributes: ResourceAttributes): Promise<boolean | { error: string }> {
    try {
      const review = (await request(
        'POST',
        '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: attributes },
        },
        AbortSignal.timeout(CHECK_TIMEOUT_MS),
      )) as { status?: { allowed?: unknown } } | undefined;
      return review?.status?.allowed === true;
    } catch (err) {
      return statusOf(err);
    }
  }
}
