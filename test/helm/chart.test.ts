/**
 * The Helm chart, with a real helm v3: lint, render, and check every rendered object the way the
 * API server would (core kinds against their schemas with unknown fields rejected, WorkflowTemplates
 * against the upstream Argo CRD), then the properties the chart promises an operator.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, lstatSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1ObjectMeta,
  V1PodSpec,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1Service,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import * as k8s from '@kubernetes/client-node';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Pod, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parse as parseYaml } from 'yaml';
import { loadConfig, SERVE_FLAGS } from '../../src/config.js';
import { ESCALATION_ALERTNAMES } from '../../src/remediation/model.js';
import { loadRules } from '../../src/rules/load.js';
import { isDns1123Label, isDns1123Subdomain, labelProblems, validateArgoObject } from '../support/argo-schema.js';
import {
  CHART_DIR,
  helm,
  type KubeObject,
  parseManifests,
  RELEASE_NAME,
  RELEASE_NAMESPACE,
  renderChart,
} from '../support/helm.js';

const REPO_ROOT = resolve(CHART_DIR, '../..');
const DEFAULT_RULES = readFileSync(join(REPO_ROOT, 'rules/default.yaml'), 'utf8');
const TEMPLATE_DIR = join(CHART_DIR, 'files/workflowtemplates');
const BUILT_IN_TEMPLATES = [
  'check-image-registry',
  'diagnose-and-recover',
  'diagnose-memory',
  'diagnose-pod',
  'network-diagnostics',
  'restart-with-backup',
  'scale-and-monitor',
];

/** Value sets every lint and render test runs with: the defaults and each toggle. */
const TOGGLES: ReadonlyArray<{ name: string; set: string[] }> = [
  { name: 'default values', set: [] },
  { name: 'knative.enabled', set: ['knative.enabled=true'] },
  { name: 'redis.enabled', set: ['redis.enabled=true'] },
  { name: 'serviceMonitor and prometheusRule', set: ['serviceMonitor.enabled=true', 'prometheusRule.enabled=true'] },
  { name: 'autoscaling.enabled with Redis', set: ['autoscaling.enabled=true', 'redis.enabled=true'] },
  { name: 'replicaCount=3 with redis.url', set: ['replicaCount=3', 'redis.url=redis://cache.example:6379'] },
  {
    name: 'knative.enabled without a scale limit, with Redis',
    set: ['knative.enabled=true', 'knative.maxScale=0', 'redis.existingSecret=redis'],
  },
  {
    name: 'a Redis Sentinel with its password Secret and waitReplicas',
    set: [
      'replicaCount=2',
      'redis.sentinel.hosts={redis-node-0.redis-headless.redis.svc:26379,redis-node-1.redis-headless.redis.svc:26379}',
      'redis.sentinel.masterName=mymaster',
      'redis.password.existingSecret=redis',
      'redis.waitReplicas=1',
    ],
  },
  {
    name: 'knative.enabled on a Redis Cluster with its password Secret',
    set: [
      'knative.enabled=true',
      'knative.maxScale=4',
      'redis.cluster.nodes={redis-cluster-0.redis-cluster-headless.redis.svc:6379}',
      'redis.password.existingSecret=redis-cluster',
    ],
  },
  { name: 'auth.token', set: ['auth.token=s3cret'] },
  { name: 'workflowTemplates.enabled=false', set: ['workflowTemplates.enabled=false'] },
  {
    name: 'clusters.list with kubeconfigs.files',
    set: [
      'clusters.default=east',
      'clusters.list[0].name=east',
      'clusters.list[1].name=west',
      'clusters.list[1].kubeconfig=west',
      'clusters.kubeconfigs.files.west=apiVersion: v1',
    ],
  },
  {
    name: 'escalation.urls and argoUi.url, with the PrometheusRule',
    set: [
      'escalation.urls={http://alertmanager-0.monitoring.svc:9093,http://alertmanager-1.monitoring.svc:9093}',
      'argoUi.url=https://argo.example.com',
      'prometheusRule.enabled=true',
    ],
  },
];

const renders = new Map<string, Promise<KubeObject[]>>();
/** Each value set is rendered once per process; tests only read the result. */
function render(values: object | readonly string[] = []): Promise<KubeObject[]> {
  const key = JSON.stringify(values);
  let rendered = renders.get(key);
  if (!rendered) {
    rendered = renderChart(values);
    renders.set(key, rendered);
  }
  return rendered;
}

function metadataOf(object: KubeObject): V1ObjectMeta {
  return (object.metadata ?? {}) as V1ObjectMeta;
}

function describeObject(object: KubeObject): string {
  const metadata = metadataOf(object);
  return `${String(object.kind)} ${metadata.namespace ? `${metadata.namespace}/` : ''}${metadata.name ?? '?'}`;
}

function ofKind<T = KubeObject>(objects: readonly KubeObject[], kind: string, apiVersion?: string): T[] {
  return objects.filter((o) => o.kind === kind && (apiVersion === undefined || o.apiVersion === apiVersion)) as T[];
}

/** The one object of KIND named NAME; fails naming what was rendered instead. */
function one<T = KubeObject>(objects: readonly KubeObject[], kind: string, name: string, apiVersion?: string): T {
  const found = ofKind(objects, kind, apiVersion).filter((o) => metadataOf(o).name === name);
  assert.equal(found.length, 1, `expected one ${kind} ${name}, rendered: ${objects.map(describeObject).join(', ')}`);
  return found[0] as T;
}

function receiver(objects: readonly KubeObject[]): V1Deployment {
  return one<V1Deployment>(objects, 'Deployment', RELEASE_NAME);
}

function receiverContainer(podSpec: V1PodSpec | undefined): V1Container {
  const container = podSpec?.containers.find((c) => c.name === 'kube-sentinel');
  assert.ok(container, 'no kube-sentinel container');
  return container;
}

function envOf(container: V1Container): Map<string, V1EnvVar> {
  return new Map((container.env ?? []).map((variable) => [variable.name, variable]));
}

function envValue(container: V1Container, name: string): string | undefined {
  return envOf(container).get(name)?.value;
}

// --- strict validation of core kinds -------------------------------------------------------------

type Validating = new (data: never) => { validate(): void };

/** Each core kind the chart renders: its apiVersion, a kubernetes-models validator and the client-node model (for field names). */
const CORE_KINDS: Readonly<Record<string, { apiVersion: string; model: Validating; type: string }>> = {
  Deployment: { apiVersion: 'apps/v1', model: Deployment, type: 'V1Deployment' },
  Service: { apiVersion: 'v1', model: Service, type: 'V1Service' },
  ServiceAccount: { apiVersion: 'v1', model: ServiceAccount, type: 'V1ServiceAccount' },
  ConfigMap: { apiVersion: 'v1', model: ConfigMap, type: 'V1ConfigMap' },
  Secret: { apiVersion: 'v1', model: Secret, type: 'V1Secret' },
  Role: { apiVersion: 'rbac.authorization.k8s.io/v1', model: Role, type: 'V1Role' },
  RoleBinding: { apiVersion: 'rbac.authorization.k8s.io/v1', model: RoleBinding, type: 'V1RoleBinding' },
  ClusterRole: { apiVersion: 'rbac.authorization.k8s.io/v1', model: ClusterRole, type: 'V1ClusterRole' },
  ClusterRoleBinding: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    model: ClusterRoleBinding,
    type: 'V1ClusterRoleBinding',
  },
  HorizontalPodAutoscaler: {
    apiVersion: 'autoscaling/v2',
    model: HorizontalPodAutoscaler,
    type: 'V2HorizontalPodAutoscaler',
  },
  PodDisruptionBudget: { apiVersion: 'policy/v1', model: PodDisruptionBudget, type: 'V1PodDisruptionBudget' },
};

const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding']);

interface AttributeType {
  baseName: string;
  type: string;
}

const MODELS = k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttributeType[] } | undefined>;

/**
 * The API server decodes strictly (kubectl and helm ask for fieldValidation=Strict): a field its
 * types do not declare is an error, not ignored. kubernetes-models checks types and required
 * fields but lets unknown ones through, so this walks the object against client-node's generated
 * models, which list every field of every type.
 */
function unknownFields(value: unknown, type: string, path: string): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    return Array.isArray(value)
      ? value.flatMap((item, index) => unknownFields(item, array[1]!, `${path}[${index}]`))
      : [];
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value !== 'object' || value === null) return [];
    return Object.entries(value).flatMap(([key, item]) =>
      unknownFields(item, map[1]!, `${path}[${JSON.stringify(key)}]`),
    );
  }
  const attributes = MODELS[type]?.getAttributeTypeMap?.();
  if (!attributes || typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  const fields = new Map(attributes.map((attribute) => [attribute.baseName, attribute.type]));
  return Object.entries(value).flatMap(([key, item]) => {
    const fieldType = fields.get(key);
    const field = path === '' ? key : `${path}.${key}`;
    return fieldType === undefined ? [`${field}: unknown field`] : unknownFields(item, fieldType, field);
  });
}

/** Everything the API server would refuse in a core object; empty when it would accept it. */
function coreProblems(object: KubeObject): string[] {
  const kind = String(object.kind);
  const core = CORE_KINDS[kind];
  if (!core) return [`kind ${kind}: not a core kind this test knows`];
  const problems: string[] = [];
  if (object.apiVersion !== core.apiVersion)
    problems.push(`apiVersion: ${String(object.apiVersion)}, expected ${core.apiVersion}`);
  try {
    new core.model(object as never).validate();
  } catch (error) {
    problems.push((error as Error).message);
  }
  problems.push(...unknownFields(object, core.type, ''));
  problems.push(...metadataProblems(object, !CLUSTER_SCOPED.has(kind)));
  return problems;
}

/** What the API server checks in metadata itself: names, namespace, labels. */
function metadataProblems(object: KubeObject, namespaced: boolean): string[] {
  const metadata = metadataOf(object);
  const problems: string[] = [];
  const name = metadata.name ?? '';
  // Service names become DNS labels (and environment variable prefixes): a label, starting with a letter.
  const validName = object.kind === 'Service' ? isDns1123Label(name) && /^[a-z]/.test(name) : isDns1123Subdomain(name);
  if (!validName) problems.push(`metadata.name: invalid: ${JSON.stringify(name)}`);
  if (namespaced && !isDns1123Label(metadata.namespace ?? ''))
    problems.push(`metadata.namespace: missing or invalid: ${JSON.stringify(metadata.namespace)}`);
  if (!namespaced && metadata.namespace !== undefined)
    problems.push('metadata.namespace: set on a cluster-scoped object');
  problems.push(...labelProblems(metadata.labels));
  return problems;
}

/** A pod spec outside a core kind (Knative's revision template) is checked as the spec of a Pod. */
function podSpecProblems(podSpec: unknown): string[] {
  const problems: string[] = [];
  try {
    new Pod({ metadata: { name: 'check' }, spec: podSpec } as never).validate();
  } catch (error) {
    problems.push((error as Error).message);
  }
  problems.push(...unknownFields(podSpec, 'V1PodSpec', 'spec.template.spec'));
  return problems;
}

// --- custom resources ------------------------------------------------------------------------------

interface KnativeService {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta;
  spec: { template: { metadata: V1ObjectMeta; spec: V1PodSpec } };
}

interface ServiceMonitor {
  metadata: V1ObjectMeta;
  spec: {
    selector: { matchLabels: Record<string, string> };
    namespaceSelector?: { matchNames?: string[] };
    endpoints: Array<{ port?: string; path?: string; interval?: string; scrapeTimeout?: string }>;
  };
}

interface PrometheusRule {
  metadata: V1ObjectMeta;
  spec: {
    groups: Array<{
      name: string;
      rules: Array<{
        alert?: string;
        record?: string;
        expr: string;
        for?: string;
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
      }>;
    }>;
  };
}

/**
 * The pod and container fields a Knative Service accepts on a cluster with default feature flags
 * (knative.dev/serving pkg/apis/serving/fieldmask.go); anything else needs a flag turned on.
 */
const KNATIVE_POD_FIELDS = new Set([
  'serviceAccountName',
  'containers',
  'volumes',
  'imagePullSecrets',
  'enableServiceLinks',
]);
const KNATIVE_CONTAINER_FIELDS = new Set([
  'name',
  'args',
  'command',
  'env',
  'workingDir',
  'envFrom',
  'image',
  'imagePullPolicy',
  'livenessProbe',
  'ports',
  'readinessProbe',
  'startupProbe',
  'resources',
  'securityContext',
  'terminationMessagePath',
  'terminationMessagePolicy',
  'volumeMounts',
]);
const KNATIVE_SECURITY_CONTEXT_FIELDS = new Set([
  'runAsUser',
  'runAsGroup',
  'runAsNonRoot',
  'readOnlyRootFilesystem',
  'capabilities',
  'allowPrivilegeEscalation',
  'seccompProfile',
]);
const KNATIVE_VOLUME_SOURCES = new Set(['secret', 'configMap', 'projected']);
/** Knative sets these itself and refuses them from the user. */
const KNATIVE_RESERVED_ENV = new Set(['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION']);

function knativeProblems(service: KnativeService): string[] {
  const problems: string[] = [];
  if (service.apiVersion !== 'serving.knative.dev/v1') problems.push(`apiVersion: ${service.apiVersion}`);
  problems.push(...metadataProblems(service as unknown as KubeObject, true));
  const template = service.spec?.template;
  if (!template?.spec) return [...problems, 'spec.template.spec: required'];
  problems.push(...labelProblems(template.metadata?.labels, 'spec.template.metadata.labels'));
  problems.push(...podSpecProblems(template.spec));
  for (const field of Object.keys(template.spec)) {
    if (!KNATIVE_POD_FIELDS.has(field)) problems.push(`spec.template.spec.${field}: needs a Knative feature flag`);
  }
  if (template.spec.containers.length !== 1)
    problems.push('spec.template.spec.containers: exactly one container serves');
  for (const container of template.spec.containers) {
    for (const field of Object.keys(container)) {
      if (!KNATIVE_CONTAINER_FIELDS.has(field))
        problems.push(`container ${container.name}.${field}: not allowed by Knative`);
    }
    for (const field of Object.keys(container.securityContext ?? {})) {
      if (!KNATIVE_SECURITY_CONTEXT_FIELDS.has(field))
        problems.push(`container ${container.name}.securityContext.${field}: not allowed by Knative`);
    }
    for (const variable of container.env ?? []) {
      if (KNATIVE_RESERVED_ENV.has(variable.name)) problems.push(`env ${variable.name}: reserved by Knative`);
      const source = variable.valueFrom ?? {};
      for (const field of Object.keys(source)) {
        if (field !== 'configMapKeyRef' && field !== 'secretKeyRef')
          problems.push(`env ${variable.name}.valueFrom.${field}: needs a Knative feature flag`);
      }
    }
    const ports = container.ports ?? [];
    if (ports.length !== 1 || !['http1', 'h2c', undefined].includes(ports[0]!.name))
      problems.push(`ports: one port named http1 or h2c, got ${JSON.stringify(ports)}`);
    for (const probe of [container.livenessProbe, container.readinessProbe]) {
      const port = probe?.httpGet?.port;
      if (port !== undefined && port !== ports[0]?.containerPort)
        problems.push(`probes: port ${String(port)} is not the container port`);
    }
  }
  for (const volume of template.spec.volumes ?? []) {
    for (const field of Object.keys(volume)) {
      if (field !== 'name' && !KNATIVE_VOLUME_SOURCES.has(field))
        problems.push(`volume ${volume.name}.${field}: needs a Knative feature flag`);
    }
  }
  return problems;
}

function serviceMonitorProblems(monitor: ServiceMonitor): string[] {
  const problems = metadataProblems(monitor as unknown as KubeObject, true);
  if (!monitor.spec?.selector?.matchLabels || Object.keys(monitor.spec.selector.matchLabels).length === 0)
    problems.push('spec.selector.matchLabels: required');
  if (!Array.isArray(monitor.spec?.endpoints) || monitor.spec.endpoints.length === 0)
    problems.push('spec.endpoints: required');
  for (const endpoint of monitor.spec?.endpoints ?? []) {
    if (typeof endpoint.port !== 'string') problems.push('spec.endpoints[].port: a named port is required');
  }
  return problems;
}

function prometheusRuleProblems(rule: PrometheusRule): string[] {
  const problems = metadataProblems(rule as unknown as KubeObject, true);
  if (!Array.isArray(rule.spec?.groups) || rule.spec.groups.length === 0) return [...problems, 'spec.groups: required'];
  for (const group of rule.spec.groups) {
    if (typeof group.name !== 'string' || group.name === '') problems.push('spec.groups[].name: required');
    for (const entry of group.rules ?? []) {
      if (typeof entry.expr !== 'string' || entry.expr.trim() === '')
        problems.push(`${entry.alert ?? '?'}: expr required`);
      if ((entry.alert === undefined) === (entry.record === undefined))
        problems.push(`${entry.alert ?? '?'}: exactly one of alert and record`);
      if (entry.for !== undefined && !/^([0-9]+(ms|s|m|h|d|w|y))+$/.test(entry.for))
        problems.push(`${entry.alert ?? '?'}: for: ${entry.for}`);
      // Prometheus' own template syntax must reach Prometheus, not be eaten by Helm.
      for (const text of Object.values(entry.annotations ?? {})) {
        if (text.includes('{{') !== text.includes('}}'))
          problems.push(`${entry.alert ?? '?'}: unbalanced template in ${JSON.stringify(text)}`);
      }
    }
  }
  return problems;
}

/** Every problem with one rendered object, whatever its kind; unknown kinds are problems too. */
function objectProblems(object: KubeObject): string[] {
  switch (`${String(object.apiVersion)} ${String(object.kind)}`) {
    case 'serving.knative.dev/v1 Service':
      return knativeProblems(object as unknown as KnativeService);
    case 'monitoring.coreos.com/v1 ServiceMonitor':
      return serviceMonitorProblems(object as unknown as ServiceMonitor);
    case 'monitoring.coreos.com/v1 PrometheusRule':
      return prometheusRuleProblems(object as unknown as PrometheusRule);
    case 'argoproj.io/v1alpha1 WorkflowTemplate':
      return validateArgoObject(object);
    default:
      return coreProblems(object);
  }
}

// --- tests -----------------------------------------------------------------------------------------

describe('the object validator these tests rely on', () => {
  const valid = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'x', namespace: 'n' },
    spec: {
      selector: { matchLabels: { app: 'x' } },
      template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'x', image: 'registry/x:1' }] } },
    },
  };
  const broken: ReadonlyArray<{ what: string; object: unknown; field: RegExp }> = [
    {
      what: 'replicas given as a string',
      object: { ...valid, spec: { ...valid.spec, replicas: 'two' } },
      field: /replicas/,
    },
    { what: 'a missing selector', object: { ...valid, spec: { template: valid.spec.template } }, field: /selector/ },
    {
      what: 'a misspelt field (subpath)',
      object: {
        ...valid,
        spec: {
          ...valid.spec,
          template: {
            ...valid.spec.template,
            spec: {
              containers: [{ name: 'x', image: 'i:1', volumeMounts: [{ name: 'v', mountPath: '/v', subpath: 'f' }] }],
            },
          },
        },
      },
      field: /volumeMounts\[0\]\.subpath: unknown field/,
    },
    {
      what: 'an invalid label value',
      object: { ...valid, metadata: { name: 'x', namespace: 'n', labels: { a: 'not ok!' } } },
      field: /metadata\.labels/,
    },
  ];

  it('accepts a valid Deployment', () => {
    assert.deepEqual(coreProblems(valid), []);
  });

  for (const { what, object, field } of broken) {
    it(`rejects a Deployment with ${what}`, () => {
      const problems = coreProblems(object as KubeObject);
      assert.ok(
        problems.some((problem) => field.test(problem)),
        `expected a problem matching ${field}, got ${JSON.stringify(problems)}`,
      );
    });
  }
});

describe('helm lint', () => {
  for (const { name, set } of TOGGLES) {
    it(`passes --strict with ${name}`, async () => {
      const result = await helm([
        'lint',
        '--strict',
        CHART_DIR,
        '--namespace',
        RELEASE_NAMESPACE,
        ...set.flatMap((s) => ['--set', s]),
      ]);
      assert.equal(result.status, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }

  const wrong: ReadonlyArray<{ what: string; args: string[]; message: RegExp }> = [
    {
      what: 'replicaCount given as a string',
      args: ['--set-string', 'replicaCount=two'],
      message: /replicaCount: Invalid type\. Expected: integer, given: string/,
    },
    {
      what: 'an unknown config.logLevel',
      args: ['--set', 'config.logLevel=loud'],
      message: /config\.logLevel.*must be one of/,
    },
    {
      what: 'an unknown config.cooldownStoreFailure',
      args: ['--set', 'config.cooldownStoreFailure=maybe'],
      message: /config\.cooldownStoreFailure.*must be one of/,
    },
    {
      what: 'a misspelt top-level key',
      args: ['--set', 'replicas=3'],
      message: /Additional property replicas is not allowed/,
    },
    {
      what: 'a misspelt key in config',
      args: ['--set', 'config.dryrun=true'],
      message: /config.*Additional property dryrun is not allowed/,
    },
    {
      what: 'a submitTimeout given as a number',
      args: ['--set', 'config.submitTimeout=10'],
      message: /config\.submitTimeout: Invalid type\. Expected: string, given: integer/,
    },
    {
      what: 'escalation.urls given as one string',
      args: ['--set', 'escalation.urls=http://alertmanager:9093'],
      message: /escalation\.urls: Invalid type\. Expected: array, given: string/,
    },
  ];
  for (const { what, args, message } of wrong) {
    it(`fails on ${what}, naming the value`, async () => {
      const result = await helm(['lint', CHART_DIR, ...args]);
      assert.notEqual(result.status, 0, `lint passed:\n${result.stdout}`);
      assert.match(result.stdout + result.stderr, message);
    });
  }

  it('fails on replicaCount quoted in a values file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-sentinel-values-'));
    try {
      writeFileSync(join(dir, 'values.yaml'), 'replicaCount: "2"\n');
      const result = await helm(['lint', CHART_DIR, '--values', join(dir, 'values.yaml')]);
      assert.notEqual(result.status, 0);
      assert.match(result.stdout, /replicaCount: Invalid type\. Expected: integer, given: string/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * What the schema cannot say in words (`Must not validate the schema (not)`, `Must validate "then"
 * as "if" was valid`) the templates say: `helm template` and `helm install` stop with the sentence,
 * and `helm lint` fails and prints it.
 */
describe('values refused in a sentence', () => {
  const needsRedis =
    'more than one replica needs a shared Redis, or each keeps its own cooldowns and the same workload is remediated once per replica: set redis.enabled=true, redis.url, redis.existingSecret, redis.sentinel.hosts or redis.cluster.nodes';
  const refused: ReadonlyArray<{ what: string; set: string[]; setString?: string[]; message: string }> = [
    {
      what: 'an image tag of latest',
      set: ['image.tag=latest'],
      message:
        "image.tag must pin a version, not latest: a restart must not change the code (leave it empty for the chart's appVersion, or set image.digest)",
    },
    {
      what: 'a bundled Redis image tag of latest',
      set: ['redis.enabled=true', 'redis.image.tag=latest'],
      message: 'redis.image.tag must pin a version, not latest',
    },
    {
      what: 'two cooldown stores at once',
      set: ['redis.enabled=true', 'redis.url=redis://r:6379'],
      message:
        'set only one of redis.enabled, redis.url, redis.existingSecret, redis.sentinel.hosts and redis.cluster.nodes (got redis.enabled, redis.url): each names a cooldown store, and the replicas must share one',
    },
    {
      what: 'redis.url and redis.existingSecret at once',
      set: ['redis.url=redis://r:6379', 'redis.existingSecret=redis'],
      message:
        'set only one of redis.enabled, redis.url, redis.existingSecret, redis.sentinel.hosts and redis.cluster.nodes (got redis.url, redis.existingSecret)',
    },
    {
      what: 'two replicas without Redis',
      set: ['replicaCount=2'],
      message: `replicaCount is 2: ${needsRedis}, or replicaCount=1`,
    },
    {
      what: 'autoscaling without Redis',
      set: ['autoscaling.enabled=true'],
      message: `autoscaling.enabled with autoscaling.maxReplicas=6: ${needsRedis}, or autoscaling.enabled=false`,
    },
    {
      what: 'a Knative Service scaling past one pod without Redis',
      set: ['knative.enabled=true', 'knative.maxScale=5'],
      message: `knative.maxScale is 5: ${needsRedis}, or knative.maxScale=1`,
    },
    {
      what: 'a Knative Service without a scale limit and without Redis',
      set: ['knative.enabled=true', 'knative.maxScale=0'],
      message: 'knative.maxScale is 0 (no limit):',
    },
    {
      what: 'a ServiceMonitor with knative.enabled',
      set: ['knative.enabled=true', 'serviceMonitor.enabled=true'],
      message: "serviceMonitor.enabled selects the chart's Service, which knative.enabled replaces",
    },
    {
      what: 'no rules at all',
      set: ['rules.defaults=false'],
      message: 'rules: nothing to load; keep rules.defaults=true or give rules.custom or rules.files',
    },
    {
      what: 'a rules file name the chart writes itself',
      set: ['rules.files.custom\\.yaml=rules: []'],
      message: 'rules.files: custom.yaml is a name the chart writes itself; choose another file name',
    },
    {
      what: 'a rules file the receiver would not load',
      set: ['rules.files.extra\\.txt=rules: []'],
      message: 'rules.files: "extra.txt" must be a file name ending in .yaml or .yml',
    },
    {
      what: 'a submitTimeout that is not a duration',
      set: ['config.submitTimeout=10 seconds'],
      message: 'config.submitTimeout must be a Go duration such as 10s, 1m30s or 500ms (got "10 seconds")',
    },
    {
      what: 'a custom rule whose cooldown is not a duration',
      set: [
        'rules.custom[0].name=slow',
        'rules.custom[0].match.pattern=x',
        'rules.custom[0].remediation.action=trigger-argo-workflow',
        'rules.custom[0].remediation.params.workflow_template=diagnose-pod',
        'rules.custom[0].remediation.cooldown=5 minutes',
      ],
      message:
        'rules.custom[0] (slow): remediation.cooldown must be a Go duration such as 30s, 10m or 1h30m (got "5 minutes")',
    },
    {
      what: 'a custom rule whose attempt_window is not a duration',
      set: [
        'rules.custom[0].name=budget',
        'rules.custom[0].match.pattern=x',
        'rules.custom[0].remediation.action=trigger-argo-workflow',
        'rules.custom[0].remediation.params.workflow_template=diagnose-pod',
        'rules.custom[0].remediation.attempt_window=1 day',
      ],
      message:
        'rules.custom[0] (budget): remediation.attempt_window must be a Go duration such as 30s, 10m or 1h30m (got "1 day")',
    },
    {
      what: 'a ServiceMonitor interval that is not a duration',
      set: [],
      setString: ['serviceMonitor.interval=30'],
      message: 'serviceMonitor.interval must be a Prometheus duration such as 30s or 1m (got "30")',
    },
    {
      what: 'an image digest that is not one',
      set: ['image.digest=abc'],
      message: 'image.digest must be sha256: followed by 64 lowercase hex digits (got "abc")',
    },
    {
      what: 'an escalation URL that is not an http(s) URL, without echoing it',
      set: ['escalation.urls={http://alertmanager-0:9093,alertmanager-1:9093}'],
      message:
        'escalation.urls[1] must be the http:// or https:// base URL of an Alertmanager, such as http://alertmanager.monitoring.svc:9093, without a query, a fragment or a comma (its value is not repeated here: it may hold a password)',
    },
    {
      what: 'an escalation URL with a query',
      setString: ['escalation.urls[0]=http://alertmanager:9093/?x=s3cret'],
      set: [],
      message: 'escalation.urls[0] must be the http:// or https:// base URL of an Alertmanager',
    },
    {
      what: 'an escalation ttl that is not a duration',
      set: ['escalation.ttl=1 hour'],
      message: 'escalation.ttl must be a Go duration such as 1h or 30m (got "1 hour")',
    },
    {
      what: 'an Argo UI URL that is not an http(s) URL',
      set: ['argoUi.url=argo.example.com'],
      message:
        'argoUi.url must be the http:// or https:// base URL of the Argo UI, such as https://argo.example.com, without a query or a fragment (got "argo.example.com")',
    },
    {
      what: 'a Redis URL of another scheme, without echoing it',
      set: ['redis.url=http://user:s3cret@cache:6379'],
      message:
        'redis.url must start with redis:// or rediss:// (its value is not repeated here: it may hold a password)',
    },
  ];
  /** The schema's own phrasings, which name a value but not what is wrong with it. */
  const terse = /Must (not )?validate|String length must be|Does not match pattern|does not match/;

  for (const { what, set, setString, message } of refused) {
    it(`refuses ${what} with: ${message.slice(0, 60)}…`, async () => {
      const args = [...set.flatMap((s) => ['--set', s]), ...(setString ?? []).flatMap((s) => ['--set-string', s])];
      const template = await helm(['template', RELEASE_NAME, CHART_DIR, '--namespace', RELEASE_NAMESPACE, ...args]);
      assert.notEqual(template.status, 0, 'helm template rendered');
      assert.ok(template.stderr.includes(message), template.stderr);
      assert.doesNotMatch(template.stderr, terse);
      assert.doesNotMatch(template.stderr, /s3cret/);
      const lint = await helm(['lint', CHART_DIR, '--namespace', RELEASE_NAMESPACE, ...args]);
      assert.notEqual(lint.status, 0, `helm lint passed:\n${lint.stdout}${lint.stderr}`);
      assert.ok((lint.stdout + lint.stderr).includes(message), lint.stdout + lint.stderr);
    });
  }

  it('reports every problem at once', async () => {
    const result = await helm([
      'template',
      RELEASE_NAME,
      CHART_DIR,
      '--set',
      'image.tag=latest',
      '--set',
      'replicaCount=2',
    ]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /replicaCount is 2: .*; image\.tag must pin a version/);
  });
});

describe('helm template', () => {
  for (const { name, set } of TOGGLES) {
    it(`renders only objects the API server would accept with ${name}`, async () => {
      const objects = await render(set);
      assert.ok(objects.length > 0);
      const problems = objects.flatMap((object) =>
        objectProblems(object).map((problem) => `${describeObject(object)}: ${problem}`),
      );
      assert.deepEqual(problems, []);
    });

    it(`labels every object with the standard labels with ${name}`, async () => {
      for (const object of await render(set)) {
        const labels = metadataOf(object).labels ?? {};
        assert.deepEqual(
          {
            'helm.sh/chart': labels['helm.sh/chart'],
            'app.kubernetes.io/name': labels['app.kubernetes.io/name'],
            'app.kubernetes.io/instance': labels['app.kubernetes.io/instance'],
            'app.kubernetes.io/version': labels['app.kubernetes.io/version'],
            'app.kubernetes.io/managed-by': labels['app.kubernetes.io/managed-by'],
            'app.kubernetes.io/part-of': labels['app.kubernetes.io/part-of'],
          },
          {
            'helm.sh/chart': 'kube-sentinel-0.1.0',
            'app.kubernetes.io/name': 'kube-sentinel',
            'app.kubernetes.io/instance': RELEASE_NAME,
            'app.kubernetes.io/version': '0.1.0',
            // The built-in templates keep their own label, as the Workflows Kube Sentinel submits do.
            'app.kubernetes.io/managed-by': object.kind === 'WorkflowTemplate' ? 'kube-sentinel' : 'Helm',
            'app.kubernetes.io/part-of': 'kube-sentinel',
          },
          describeObject(object),
        );
      }
    });
  }

  it('writes no number in exponent notation (the API server cannot read 1e+06 as an integer)', async () => {
    for (const { set } of TOGGLES) {
      const result = await helm([
        'template',
        RELEASE_NAME,
        CHART_DIR,
        '--namespace',
        RELEASE_NAMESPACE,
        ...set.flatMap((s) => ['--set', s]),
      ]);
      assert.equal(result.status, 0, result.stderr);
      const exponents = result.stdout.split('\n').filter((line) => /:\s+-?[0-9.]+e[+-]?[0-9]+\s*$/.test(line));
      assert.deepEqual(exponents, [], set.join(','));
    }
  });

  it('pins every image and never uses :latest', async () => {
    for (const { set } of [...TOGGLES, { set: ['redis.enabled=true', 'knative.enabled=true'] }]) {
      const images = JSON.stringify(await render(set)).match(/"image":"[^"]*"/g) ?? [];
      assert.ok(images.length > 0);
      for (const image of images) {
        const reference = (JSON.parse(`{${image}}`) as { image: string }).image;
        assert.match(reference, /(:[\w][\w.-]*|@sha256:[a-f0-9]{64})$/, `unpinned image ${reference}`);
        assert.doesNotMatch(reference, /:latest$/, `${reference} uses :latest`);
      }
    }
  });

  it('fails on settings that contradict each other, naming them', async () => {
    const result = await helm([
      'template',
      RELEASE_NAME,
      CHART_DIR,
      '--set',
      'knative.enabled=true',
      '--set',
      'serviceMonitor.enabled=true',
    ]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /serviceMonitor\.enabled/);
  });
});

describe('the receiver Deployment', () => {
  it('mounts the rules ConfigMap as a directory, never through subPath, where KUBE_SENTINEL_RULES points', async () => {
    const deployment = receiver(await render());
    const podSpec = deployment.spec?.template.spec;
    const volume = podSpec?.volumes?.find((v) => v.configMap?.name === `${RELEASE_NAME}-rules`);
    assert.ok(volume, 'no volume of the rules ConfigMap');
    assert.equal(volume.configMap?.items, undefined, 'items would project single keys and hide new files');
    const container = receiverContainer(podSpec);
    const mount = container.volumeMounts?.find((m) => m.name === volume.name);
    assert.ok(mount, 'rules volume not mounted');
    assert.equal(mount.subPath, undefined);
    assert.equal(mount.subPathExpr, undefined);
    assert.equal(envValue(container, 'KUBE_SENTINEL_RULES'), mount.mountPath);
  });

  it('probes /healthz for liveness and /readyz for readiness on the serving port', async () => {
    const container = receiverContainer(receiver(await render()).spec?.template.spec);
    assert.equal(container.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(container.livenessProbe?.httpGet?.port, 'http');
    assert.deepEqual(container.ports, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    assert.equal(envValue(container, 'PORT'), '8080');
  });

  it('runs non-root with a read-only root filesystem, no privilege escalation and no capabilities', async () => {
    const podSpec = receiver(await render()).spec?.template.spec;
    const container = receiverContainer(podSpec);
    assert.equal(podSpec?.securityContext?.runAsNonRoot, true);
    assert.equal(podSpec?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
    assert.equal(container.securityContext?.runAsNonRoot, true);
    assert.ok(
      (container.securityContext?.runAsUser ?? 0) > 0,
      'a numeric non-root user lets the kubelet verify runAsNonRoot',
    );
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL']);
    assert.ok(container.resources?.requests && container.resources.limits, 'resources');
  });

  it("keeps the image's command: `node dist/cli.js serve`", async () => {
    const container = receiverContainer(receiver(await render()).spec?.template.spec);
    assert.equal(container.command, undefined);
    assert.ok(container.args === undefined || JSON.stringify(container.args) === '["serve"]');
    assert.equal(container.image, 'ghcr.io/kube-sentinel/kube-sentinel:0.1.0');
  });

  it('runs one replica by default, with no Redis to share cooldowns, and more only as asked with Redis', async () => {
    assert.equal(receiver(await render()).spec?.replicas, 1);
    assert.equal(receiver(await render(['redis.enabled=true'])).spec?.replicas, 1);
    assert.equal(receiver(await render(['replicaCount=3', 'redis.enabled=true'])).spec?.replicas, 3);
    assert.equal(receiver(await render(['replicaCount=2', 'redis.existingSecret=redis'])).spec?.replicas, 2);
  });

  it('rolls out without ever dropping below the asked-for replicas, and spreads them across nodes', async () => {
    const deployment = receiver(await render(['replicaCount=3', 'redis.url=redis://cache.example:6379']));
    assert.equal(deployment.spec?.replicas, 3);
    assert.deepEqual(deployment.spec?.strategy, {
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
    assert.equal(deployment.spec?.template.spec?.terminationGracePeriodSeconds, 30);
    const spread = deployment.spec?.template.spec?.topologySpreadConstraints ?? [];
    assert.ok(
      spread.some((c) => c.topologyKey === 'kubernetes.io/hostname' && c.whenUnsatisfiable === 'ScheduleAnyway'),
      'a soft spread across nodes',
    );
    assert.deepEqual(spread[0]?.labelSelector?.matchLabels, deployment.spec?.selector.matchLabels);
  });

  it('announces its metrics to annotation-based scraping', async () => {
    const annotations = receiver(await render()).spec?.template.metadata?.annotations ?? {};
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(annotations['prometheus.io/port'], '8080');
    assert.equal(annotations['prometheus.io/path'], '/metrics');
  });

  it('shows a rules change in checksum/rules without restarting the pods, unless rules.restartOnChange', async () => {
    const before = receiver(await render());
    const after = receiver(await render(['rules.excludedNamespaces={monitoring}']));
    const checksum = (d: V1Deployment) => d.metadata?.annotations?.['checksum/rules'];
    assert.match(checksum(before) ?? '', /^[a-f0-9]{64}$/);
    assert.notEqual(checksum(after), checksum(before));
    assert.deepEqual(after.spec?.template, before.spec?.template, 'a pod template change would restart every pod');
    const restarting = receiver(await render(['rules.restartOnChange=true']));
    assert.equal(restarting.spec?.template.metadata?.annotations?.['checksum/rules'], checksum(restarting));
  });

  it('sets each setting through the environment variable src/config.ts reads, and the receiver accepts them', async () => {
    const container = receiverContainer(receiver(await render()).spec?.template.spec);
    const env = envOf(container);
    const known = new Set(SERVE_FLAGS.map((flag) => flag.env).filter((name): name is string => name !== undefined));
    // Read by `kube-sentinel check` to name the receiver's identity in its fixes.
    const identity = new Set(['POD_NAMESPACE', 'SERVICE_ACCOUNT_NAME']);
    for (const name of env.keys())
      assert.ok(known.has(name) || identity.has(name), `${name} is not a setting of src/config.ts`);
    // Everything but what the chart deliberately leaves to the defaults or to other values.
    // Basic auth is for installs without the chart: the chart authenticates with its bearer token.
    const leftOut = new Set([
      'HOST',
      'KUBECONFIG',
      'KUBE_SENTINEL_AUTH_TOKEN',
      'KUBE_SENTINEL_AUTH_TOKEN_FILE',
      'REDIS_URL',
      'KUBE_SENTINEL_BASIC_AUTH',
      'KUBE_SENTINEL_BASIC_AUTH_FILE',
    ]);
    // Set only when its value is given: an empty URL is not one (the next test sets it; the Redis
    // Sentinel, Cluster and password settings: test/helm/redis.test.ts).
    const givenOnly = new Set([
      'KUBE_SENTINEL_ARGO_UI_URL',
      'KUBE_SENTINEL_CLUSTERS',
      'KUBE_SENTINEL_REDIS_SENTINELS',
      'KUBE_SENTINEL_REDIS_MASTER_NAME',
      'KUBE_SENTINEL_REDIS_CLUSTER_NODES',
      'KUBE_SENTINEL_REDIS_PASSWORD_FILE',
      'KUBE_SENTINEL_REDIS_SENTINEL_PASSWORD_FILE',
    ]);
    for (const name of known)
      if (!leftOut.has(name) && !givenOnly.has(name)) assert.ok(env.has(name), `the chart does not set ${name}`);
    for (const name of givenOnly) assert.equal(env.has(name), false, `${name} is set without a value`);

    const literal = Object.fromEntries([...env].map(([name, variable]) => [name, variable.value]));
    const config = loadConfig([], literal);
    assert.equal(config.port, 8080);
    assert.equal(config.rules, '/etc/kube-sentinel/rules');
    assert.equal(config.workflowNamespace, 'argo');
    assert.equal(config.workflowServiceAccount, 'argo-workflow');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.dryRun, false);
    assert.equal(config.cooldownStoreFailure, 'closed');
    assert.equal(config.maxWorkflowsPerMinute, 30);
    assert.equal(config.submitTimeoutMs, 10_000);
    assert.equal(config.pendingLeaseMs, 30_000);
    assert.equal(config.bodyLimitBytes, 1_048_576);
    assert.equal(config.checkTemplates, false);
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.redisWaitReplicas, 0);
    assert.deepEqual(config.escalationUrls, []);
    assert.equal(config.escalationTtlMs, 3_600_000);
    assert.equal(config.argoUiUrl, undefined);
  });

  it('passes changed settings through unchanged', async () => {
    const container = receiverContainer(
      receiver(
        await render({
          config: {
            logLevel: 'debug',
            dryRun: true,
            cooldownStoreFailure: 'open',
            maxWorkflowsPerMinute: 0,
            submitTimeout: '1m30s',
            // The lease must outlive the submit timeout (the receiver refuses it otherwise).
            pendingLease: '2m',
            checkTemplates: true,
            bodyLimit: 4_194_304,
          },
          workflow: { namespace: 'remediation', serviceAccount: 'fixer' },
          escalation: {
            urls: ['http://alertmanager-0.monitoring.svc:9093', 'https://alertmanager-1.monitoring.svc:9093/am'],
            ttl: '30m',
          },
          argoUi: { url: 'https://argo.example.com' },
        }),
      ).spec?.template.spec,
    );
    const config = loadConfig(
      [],
      Object.fromEntries([...envOf(container)].map(([name, variable]) => [name, variable.value])),
    );
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.dryRun, true);
    assert.equal(config.cooldownStoreFailure, 'open');
    assert.equal(config.maxWorkflowsPerMinute, 0);
    assert.equal(config.submitTimeoutMs, 90_000);
    assert.equal(config.pendingLeaseMs, 120_000);
    assert.equal(config.bodyLimitBytes, 4_194_304);
    assert.equal(config.checkTemplates, true);
    assert.equal(config.workflowNamespace, 'remediation');
    assert.equal(config.workflowServiceAccount, 'fixer');
    assert.deepEqual(config.escalationUrls, [
      'http://alertmanager-0.monitoring.svc:9093',
      'https://alertmanager-1.monitoring.svc:9093/am',
    ]);
    assert.equal(config.escalationTtlMs, 1_800_000);
    assert.equal(config.argoUiUrl, 'https://argo.example.com');
  });

  it('omits replicas under autoscaling and renders an HPA on CPU for the Deployment', async () => {
    const objects = await render([
      'autoscaling.enabled=true',
      'autoscaling.minReplicas=3',
      'autoscaling.maxReplicas=9',
      'redis.enabled=true',
    ]);
    assert.equal(receiver(objects).spec?.replicas, undefined, 'replicas would fight the HPA on every upgrade');
    const hpa = one<V2HorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler', RELEASE_NAME);
    assert.deepEqual(hpa.spec?.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: RELEASE_NAME });
    assert.equal(hpa.spec?.minReplicas, 3);
    assert.equal(hpa.spec?.maxReplicas, 9);
    assert.equal(hpa.spec?.metrics?.[0]?.resource?.name, 'cpu');
    assert.equal(ofKind(await render(), 'HorizontalPodAutoscaler').length, 0);
  });
});

describe('the PodDisruptionBudget', () => {
  // minAvailable 1 of a single replica would block every node drain: by default, only with more.
  const cases: ReadonlyArray<{ set: string[]; rendered: boolean }> = [
    { set: [], rendered: false },
    { set: ['redis.enabled=true'], rendered: false },
    { set: ['replicaCount=2', 'redis.enabled=true'], rendered: true },
    { set: ['replicaCount=1', 'podDisruptionBudget.enabled=true'], rendered: true },
    { set: ['replicaCount=3', 'redis.enabled=true', 'podDisruptionBudget.enabled=false'], rendered: false },
    { set: ['autoscaling.enabled=true', 'autoscaling.minReplicas=1', 'redis.enabled=true'], rendered: false },
    {
      set: ['autoscaling.enabled=true', 'autoscaling.minReplicas=2', 'replicaCount=1', 'redis.enabled=true'],
      rendered: true,
    },
  ];
  for (const { set, rendered } of cases) {
    it(`is ${rendered ? '' : 'not '}rendered with ${set.join(', ') || 'default values'}`, async () => {
      const objects = await render(set);
      const budgets = ofKind<{ spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } }>(
        objects,
        'PodDisruptionBudget',
      );
      assert.equal(budgets.length, rendered ? 1 : 0);
      if (rendered) {
        assert.equal(budgets[0]!.spec.minAvailable, 1);
        assert.deepEqual(budgets[0]!.spec.selector.matchLabels, receiver(objects).spec?.selector.matchLabels);
      }
    });
  }
});

describe('the Service', () => {
  it('selects the receiver pods, and only them, on port 8080', async () => {
    const objects = await render(['redis.enabled=true']);
    const service = one<V1Service>(objects, 'Service', RELEASE_NAME);
    assert.equal(service.spec?.type, 'ClusterIP');
    assert.deepEqual(
      service.spec?.ports?.map((p) => [p.name, p.port, p.targetPort]),
      [['http', 8080, 'http']],
    );
    const selects = (pod: V1Deployment) =>
      Object.entries(service.spec?.selector ?? {}).every(([k, v]) => pod.spec?.template.metadata?.labels?.[k] === v);
    assert.ok(selects(receiver(objects)));
    assert.ok(
      !selects(one<V1Deployment>(objects, 'Deployment', `${RELEASE_NAME}-redis`)),
      'the receiver Service must not route to Redis',
    );
  });
});

describe('the rules ConfigMap', () => {
  async function rulesData(values: object | string[] = []): Promise<Record<string, string>> {
    return one<V1ConfigMap>(await render(values), 'ConfigMap', `${RELEASE_NAME}-rules`).data ?? {};
  }

  /** Loads the ConfigMap's files as the pod would see the mounted directory. */
  async function loadMounted(data: Record<string, string>) {
    const dir = mkdtempSync(join(tmpdir(), 'kube-sentinel-rules-'));
    try {
      for (const [name, content] of Object.entries(data)) writeFileSync(join(dir, name), content);
      return await loadRules(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('ships rules/default.yaml byte for byte by default', async () => {
    const data = await rulesData();
    assert.deepEqual(Object.keys(data), ['default.yaml']);
    assert.equal(data['default.yaml'], DEFAULT_RULES);
  });

  it("holds rules the project's loader accepts, the same as rules/default.yaml", async () => {
    const loaded = await loadMounted(await rulesData());
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.join('\n'));
    const direct = await loadRules(join(REPO_ROOT, 'rules/default.yaml'));
    assert.ok(direct.ok);
    assert.deepEqual(
      loaded.ruleSet.rules.map((r) => r.name),
      direct.ruleSet.rules.map((r) => r.name),
    );
    assert.deepEqual(loaded.ruleSet.excludedNamespaces, ['kube-system']);
  });

  const customRule = {
    name: 'checkout-deadlock',
    match: { pattern: '(?i)deadlock detected', namespaces: ['shop'] },
    priority: 'P2',
    remediation: {
      action: 'trigger-argo-workflow',
      params: { workflow_template: 'restart-with-backup' },
      cooldown: '30m',
      max_attempts: 2,
      attempt_window: '2h',
      approval: 'required',
      approval_timeout: '20m',
      runbook_url: 'https://runbooks.example.com/checkout-deadlock',
    },
  };

  it('holds only the custom rules with rules.defaults=false, and the loader accepts them', async () => {
    const data = await rulesData({ rules: { defaults: false, custom: [customRule] } });
    assert.deepEqual(Object.keys(data), ['custom.yaml']);
    const loaded = await loadMounted(data);
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.join('\n'));
    assert.deepEqual(
      loaded.ruleSet.rules.map((r) => r.name),
      ['checkout-deadlock'],
    );
    assert.equal(loaded.ruleSet.rules[0]!.remediation.cooldownMs, 30 * 60_000);
    const { maxAttempts, attemptWindowMs, approval, approvalTimeoutMs, runbookUrl } =
      loaded.ruleSet.rules[0]!.remediation;
    assert.deepEqual(
      { maxAttempts, attemptWindowMs, approval, approvalTimeoutMs, runbookUrl },
      {
        maxAttempts: 2,
        attemptWindowMs: 2 * 3600_000,
        approval: 'required',
        approvalTimeoutMs: 20 * 60_000,
        runbookUrl: 'https://runbooks.example.com/checkout-deadlock',
      },
    );
  });

  it('extends the defaults with custom rules, extra files and excluded namespaces', async () => {
    const extra =
      'rules:\n  - name: payments-oom\n    match: {pattern: "OOMKilled", namespaces: [payments]}\n    priority: P1\n    remediation:\n      action: trigger-argo-workflow\n      params: {workflow_template: diagnose-memory}\n';
    const data = await rulesData({
      rules: { custom: [customRule], files: { 'payments.yaml': extra }, excludedNamespaces: ['monitoring'] },
    });
    assert.deepEqual(Object.keys(data).sort(), [
      'custom.yaml',
      'default.yaml',
      'excluded-namespaces.yaml',
      'payments.yaml',
    ]);
    assert.equal(data['payments.yaml'], extra);
    const loaded = await loadMounted(data);
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.join('\n'));
    const names = loaded.ruleSet.rules.map((r) => r.name);
    assert.ok(
      names.includes('checkout-deadlock') && names.includes('payments-oom') && names.includes('oom-investigation'),
      names.join(', '),
    );
    assert.deepEqual([...loaded.ruleSet.excludedNamespaces].sort(), ['kube-system', 'monitoring']);
  });

  it('excludes no namespace at all with rules.defaults=false and rules.excludedNamespaces=[]', async () => {
    const loaded = await loadMounted(
      await rulesData({ rules: { defaults: false, custom: [customRule], excludedNamespaces: [] } }),
    );
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.join('\n'));
    assert.deepEqual(loaded.ruleSet.excludedNamespaces, []);
  });

  it('refuses a rules file name the chart writes itself, and a rule with an unknown field', async () => {
    const clash = await helm(['template', RELEASE_NAME, CHART_DIR, '--set', 'rules.files.custom\\.yaml=rules: []']);
    assert.notEqual(clash.status, 0);
    assert.match(clash.stderr, /rules\.files/);
    const dir = mkdtempSync(join(tmpdir(), 'kube-sentinel-values-'));
    try {
      writeFileSync(
        join(dir, 'values.json'),
        JSON.stringify({ rules: { custom: [{ ...customRule, cooldown: '5m' }] } }),
      );
      const typo = await helm(['lint', CHART_DIR, '--values', join(dir, 'values.json')]);
      assert.notEqual(typo.status, 0);
      assert.match(typo.stdout, /Additional property cooldown is not allowed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Every path under DIR (relative to it), directories included, without following links. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const path = join(prefix, entry.name);
    return entry.isDirectory() ? [path, ...walk(dir, path)] : [path];
  });
}

describe('the default rules in the chart', () => {
  it("are a copy of the repository's rules/*.yaml, byte for byte (rules/ is the one to edit; then copy it)", () => {
    const source = readdirSync(join(REPO_ROOT, 'rules')).filter((name) => /\.ya?ml$/.test(name));
    const copies = readdirSync(join(CHART_DIR, 'files/rules'));
    assert.deepEqual(copies.sort(), source.sort(), 'files/rules/ must hold exactly the files of rules/');
    for (const name of source) {
      const copy = join(CHART_DIR, 'files/rules', name);
      assert.ok(lstatSync(copy).isFile(), `${copy} is not a regular file`);
      assert.ok(
        readFileSync(copy).equals(readFileSync(join(REPO_ROOT, 'rules', name))),
        `helm/kube-sentinel/files/rules/${name} differs from rules/${name}: cp rules/${name} helm/kube-sentinel/files/rules/`,
      );
    }
  });

  it('leave no symbolic link anywhere in the chart (helm warns about each one, and a packaged chart must not depend on the repository)', () => {
    const links = walk(CHART_DIR).filter((path) => lstatSync(join(CHART_DIR, path)).isSymbolicLink());
    assert.deepEqual(links, []);
  });

  it('let `helm template` and `helm lint` run without a warning', async () => {
    const template = await helm(['template', RELEASE_NAME, CHART_DIR, '--namespace', RELEASE_NAMESPACE]);
    assert.equal(template.status, 0, template.stderr);
    assert.equal(template.stderr, '');
    const lint = await helm(['lint', '--strict', CHART_DIR, '--namespace', RELEASE_NAMESPACE]);
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
    assert.equal(lint.stderr, '');
  });

  it('are packaged by `helm package` with the content of rules/default.yaml', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-sentinel-package-'));
    try {
      const packaged = await helm(['package', CHART_DIR, '--destination', dir]);
      assert.equal(packaged.status, 0, packaged.stderr);
      const archive = join(dir, 'kube-sentinel-0.1.0.tgz');
      const content = spawnSync('tar', ['-xzOf', archive, 'kube-sentinel/files/rules/default.yaml'], {
        encoding: 'utf8',
      });
      assert.equal(content.status, 0, content.stderr);
      assert.equal(content.stdout, DEFAULT_RULES);
      const listing = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' }).stdout.split('\n');
      for (const name of BUILT_IN_TEMPLATES)
        assert.ok(listing.includes(`kube-sentinel/files/workflowtemplates/${name}.yaml`), `${name} not packaged`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the auth token', () => {
  it('is stored in a Secret and read by the receiver from its mounted file with auth.token', async () => {
    const objects = await render(['auth.token=s3cret']);
    const secret = one<V1Secret>(objects, 'Secret', `${RELEASE_NAME}-auth`);
    assert.equal(Buffer.from(secret.data?.token ?? '', 'base64').toString(), 's3cret');
    const podSpec = receiver(objects).spec?.template.spec;
    const container = receiverContainer(podSpec);
    const volume = podSpec?.volumes?.find((v) => v.secret?.secretName === `${RELEASE_NAME}-auth`);
    assert.ok(volume, 'Secret not mounted');
    const mount = container.volumeMounts?.find((m) => m.name === volume.name);
    const file = envValue(container, 'KUBE_SENTINEL_AUTH_TOKEN_FILE');
    const item = volume.secret?.items?.find((i) => i.key === 'token');
    assert.ok(mount && file && item);
    assert.equal(file, `${mount.mountPath}/${item.path}`);
    assert.equal(envOf(container).has('KUBE_SENTINEL_AUTH_TOKEN'), false, 'the token must not sit in the pod spec');
  });

  it('comes from the named Secret with auth.existingSecret, and the chart renders none', async () => {
    const objects = await render(['auth.existingSecret=alertmanager-token', 'auth.existingSecretKey=bearer']);
    assert.equal(ofKind(objects, 'Secret').length, 0);
    const podSpec = receiver(objects).spec?.template.spec;
    const volume = podSpec?.volumes?.find((v) => v.secret?.secretName === 'alertmanager-token');
    assert.ok(volume);
    const item = volume.secret?.items?.[0];
    const mount = receiverContainer(podSpec).volumeMounts?.find((m) => m.name === volume.name);
    assert.equal(item?.key, 'bearer');
    assert.equal(
      envValue(receiverContainer(podSpec), 'KUBE_SENTINEL_AUTH_TOKEN_FILE'),
      `${mount?.mountPath}/${item?.path}`,
    );
  });

  it('is absent by default: no Secret, no token file', async () => {
    const objects = await render();
    assert.equal(ofKind(objects, 'Secret').length, 0);
    assert.equal(
      envOf(receiverContainer(receiver(objects).spec?.template.spec)).has('KUBE_SENTINEL_AUTH_TOKEN_FILE'),
      false,
    );
  });
});

describe('the cooldown store', () => {
  it('is a bundled single Redis, non-root and without persistence, that REDIS_URL points at with redis.enabled', async () => {
    const objects = await render(['redis.enabled=true']);
    const redis = one<V1Deployment>(objects, 'Deployment', `${RELEASE_NAME}-redis`);
    const service = one<V1Service>(objects, 'Service', `${RELEASE_NAME}-redis`);
    assert.equal(redis.spec?.replicas, 1);
    const container = redis.spec?.template.spec?.containers[0];
    assert.equal(container?.image, 'docker.io/redis:7.4.2-alpine');
    assert.ok(container?.args?.join(' ').includes('--appendonly no'));
    assert.equal(redis.spec?.template.spec?.securityContext?.runAsNonRoot, true);
    assert.equal(container?.securityContext?.readOnlyRootFilesystem, true);
    assert.ok(container?.resources?.limits?.memory);
    assert.deepEqual(service.spec?.selector, redis.spec?.selector.matchLabels);
    assert.equal(service.spec?.ports?.[0]?.port, 6379);
    const url = envValue(receiverContainer(receiver(objects).spec?.template.spec), 'REDIS_URL');
    assert.equal(url, `redis://${RELEASE_NAME}-redis.${RELEASE_NAMESPACE}.svc:6379`);
  });

  it('comes from redis.url, or from a Secret with redis.existingSecret', async () => {
    const fromValue = receiverContainer(
      receiver(await render(['redis.url=rediss://cache.example:6380'])).spec?.template.spec,
    );
    assert.equal(envValue(fromValue, 'REDIS_URL'), 'rediss://cache.example:6380');
    const fromSecret = receiverContainer(
      receiver(await render(['redis.existingSecret=redis-credentials'])).spec?.template.spec,
    );
    assert.deepEqual(envOf(fromSecret).get('REDIS_URL')?.valueFrom?.secretKeyRef, {
      name: 'redis-credentials',
      key: 'redis-url',
    });
  });

  it('is in-memory by default: no REDIS_URL and no Redis objects', async () => {
    const objects = await render();
    assert.equal(envOf(receiverContainer(receiver(objects).spec?.template.spec)).has('REDIS_URL'), false);
    assert.ok(!objects.some((o) => metadataOf(o).name === `${RELEASE_NAME}-redis`));
  });
});

describe('knative.enabled', () => {
  it('renders a serving.knative.dev/v1 Service that scales to zero, and no Deployment, Service, HPA or PDB', async () => {
    const objects = await render([
      'knative.enabled=true',
      'autoscaling.enabled=true',
      'podDisruptionBudget.enabled=true',
    ]);
    const service = one<KnativeService>(objects, 'Service', RELEASE_NAME, 'serving.knative.dev/v1');
    assert.equal(service.spec.template.metadata.annotations?.['autoscaling.knative.dev/min-scale'], '0');
    // No Redis: one pod at most, as replicaCount is one.
    assert.equal(service.spec.template.metadata.annotations?.['autoscaling.knative.dev/max-scale'], '1');
    const container = receiverContainer(service.spec.template.spec);
    assert.equal(container.ports?.[0]?.containerPort, 8080);
    for (const kind of ['Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget'])
      assert.equal(ofKind(objects, kind).length, 0, kind);
    assert.equal(ofKind(objects, 'Service', 'v1').length, 0);
  });

  it('runs the same container as the Deployment, less what Knative sets or refuses itself', async () => {
    const settings = ['escalation.urls={http://alertmanager:9093}', 'argoUi.url=https://argo.example.com'];
    const knative = receiverContainer(
      one<KnativeService>(
        await render(['knative.enabled=true', ...settings]),
        'Service',
        RELEASE_NAME,
        'serving.knative.dev/v1',
      ).spec.template.spec,
    );
    const deployment = receiverContainer(receiver(await render(settings)).spec?.template.spec);
    assert.equal(envValue(knative, 'KUBE_SENTINEL_ARGO_UI_URL'), 'https://argo.example.com');
    assert.equal(knative.image, deployment.image);
    assert.deepEqual(knative.securityContext, deployment.securityContext);
    assert.deepEqual(knative.resources, deployment.resources);
    assert.deepEqual(
      knative.env,
      deployment.env?.filter((v) => v.name !== 'PORT'),
    );
    assert.deepEqual(
      knative.volumeMounts,
      deployment.volumeMounts?.filter((m) => m.name !== 'tmp'),
    );
    assert.equal(knative.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(knative.livenessProbe?.httpGet?.path, '/healthz');
  });
});

describe('RBAC', () => {
  const receiverRoleRules: V1PolicyRule[] = [
    { apiGroups: ['argoproj.io'], resources: ['workflows'], verbs: ['create'] },
    { apiGroups: ['argoproj.io'], resources: ['workflows'], verbs: ['get', 'list', 'watch', 'patch'] },
    { apiGroups: ['argoproj.io'], resources: ['workflowtemplates'], verbs: ['get', 'list'] },
  ];
  const receiverClusterRules: V1PolicyRule[] = [
    { apiGroups: ['argoproj.io'], resources: ['clusterworkflowtemplates'], verbs: ['get', 'list'] },
    { apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews'], verbs: ['create'] },
    // SPEC §11: the opt-out annotation is read from Namespaces and workloads of any namespace.
    { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['apps'], resources: ['deployments', 'statefulsets', 'daemonsets'], verbs: ['get', 'list', 'watch'] },
  ];
  const workflowRules: V1PolicyRule[] = [
    { apiGroups: [''], resources: ['pods', 'pods/log', 'events'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
    { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['get', 'list'] },
    {
      apiGroups: ['apps'],
      resources: ['deployments', 'replicasets'],
      verbs: ['get', 'list', 'watch', 'update', 'patch'],
    },
    { apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['get', 'update', 'patch'] },
    { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['get', 'list'] },
    { apiGroups: [''], resources: ['services'], verbs: ['get', 'list'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list'] },
    { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['get', 'list'] },
    { apiGroups: ['metrics.k8s.io'], resources: ['pods'], verbs: ['get', 'list'] },
    { apiGroups: ['apps'], resources: ['statefulsets', 'daemonsets'], verbs: ['get', 'list'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list'] },
    { apiGroups: ['argoproj.io'], resources: ['workflowtaskresults'], verbs: ['create', 'patch'] },
    { apiGroups: ['argoproj.io'], resources: ['workflowartifactgctasks'], verbs: ['list', 'watch'] },
    { apiGroups: ['argoproj.io'], resources: ['workflowartifactgctasks/status'], verbs: ['patch'] },
  ];
  const receiverSubject = { kind: 'ServiceAccount', name: RELEASE_NAME, namespace: RELEASE_NAMESPACE };

  it('lets the receiver create, watch and stop workflows and read workflowtemplates in the workflow namespace, and nothing more', async () => {
    const objects = await render();
    const role = one<V1Role>(objects, 'Role', RELEASE_NAME);
    assert.equal(role.metadata?.namespace, 'argo');
    assert.deepEqual(role.rules, receiverRoleRules);
    const binding = one<V1RoleBinding>(objects, 'RoleBinding', RELEASE_NAME);
    assert.equal(binding.metadata?.namespace, 'argo');
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: RELEASE_NAME });
    assert.deepEqual(binding.subjects, [receiverSubject]);
    one(objects, 'ServiceAccount', RELEASE_NAME);
  });

  it('lets the receiver read clusterworkflowtemplates, Namespaces and workloads and review its own access cluster-wide, and nothing more', async () => {
    const objects = await render();
    assert.deepEqual(one<V1ClusterRole>(objects, 'ClusterRole', RELEASE_NAME).rules, receiverClusterRules);
    const binding = one<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding', RELEASE_NAME);
    assert.deepEqual(binding.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: RELEASE_NAME,
    });
    assert.deepEqual(binding.subjects, [receiverSubject]);
  });

  it('adds the same Role in each of rbac.extraWorkflowNamespaces', async () => {
    const objects = await render({ rbac: { extraWorkflowNamespaces: ['shop', 'payments'] } });
    const roles = ofKind<V1Role>(objects, 'Role');
    assert.deepEqual(roles.map((r) => r.metadata?.namespace).sort(), ['argo', 'payments', 'shop']);
    for (const role of roles) assert.deepEqual(role.rules, receiverRoleRules);
    const bindings = ofKind<V1RoleBinding>(objects, 'RoleBinding');
    assert.deepEqual(bindings.map((b) => b.metadata?.namespace).sort(), ['argo', 'payments', 'shop']);
    for (const binding of bindings) assert.deepEqual(binding.subjects, [receiverSubject]);
  });

  it("gives the workflows' ServiceAccount the seed's kube-sentinel-workflow permissions in the workflow namespace", async () => {
    const objects = await render({ workflow: { namespace: 'remediation', serviceAccount: 'fixer' } });
    const role = one<V1ClusterRole>(objects, 'ClusterRole', `${RELEASE_NAME}-workflow`);
    assert.deepEqual(role.rules, workflowRules);
    const binding = one<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding', `${RELEASE_NAME}-workflow`);
    assert.deepEqual(binding.roleRef, {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: `${RELEASE_NAME}-workflow`,
    });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'fixer', namespace: 'remediation' }]);
    const account = one(objects, 'ServiceAccount', 'fixer');
    assert.equal(metadataOf(account).namespace, 'remediation');
    assert.equal(
      ofKind(await render(['workflow.createServiceAccount=false']), 'ServiceAccount').filter(
        (a) => metadataOf(a).name === 'argo-workflow',
      ).length,
      0,
    );
  });

  it('grants no wildcard anywhere', async () => {
    const objects = await render({ rbac: { extraWorkflowNamespaces: ['shop'] } });
    const roles = [...ofKind<V1Role>(objects, 'Role'), ...ofKind<V1ClusterRole>(objects, 'ClusterRole')];
    assert.ok(roles.length >= 3);
    for (const role of roles) {
      for (const rule of role.rules ?? []) {
        for (const value of [
          ...(rule.apiGroups ?? []),
          ...(rule.resources ?? []),
          ...(rule.verbs ?? []),
          ...(rule.resourceNames ?? []),
          ...(rule.nonResourceURLs ?? []),
        ]) {
          assert.ok(!value.includes('*'), `${role.metadata?.name}: ${JSON.stringify(rule)}`);
        }
      }
    }
  });

  it('renders no RBAC with rbac.create=false', async () => {
    const objects = await render(['rbac.create=false']);
    for (const kind of ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'])
      assert.equal(ofKind(objects, kind).length, 0, kind);
  });
});

describe('the built-in WorkflowTemplates', () => {
  function sourceOf(name: string): KubeObject {
    const text = readFileSync(join(TEMPLATE_DIR, `${name}.yaml`), 'utf8');
    return parseManifests(text)[0]!;
  }

  it('are the seven SPEC §8 names, one file each', () => {
    const files = readdirSync(TEMPLATE_DIR)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.replace(/\.yaml$/, ''))
      .sort();
    assert.deepEqual(files, BUILT_IN_TEMPLATES);
  });

  it('land in workflow.namespace, run as workflow.serviceAccount, and keep everything else of their files', async () => {
    const objects = await render({ workflow: { namespace: 'remediation', serviceAccount: 'fixer' } });
    const templates = ofKind(objects, 'WorkflowTemplate', 'argoproj.io/v1alpha1');
    assert.deepEqual(templates.map((t) => metadataOf(t).name).sort(), BUILT_IN_TEMPLATES);
    for (const rendered of templates) {
      const name = metadataOf(rendered).name!;
      const expected = structuredClone(sourceOf(name)) as {
        metadata: V1ObjectMeta;
        spec: { serviceAccountName?: string; artifactGC?: { serviceAccountName?: string } };
      };
      expected.metadata.namespace = 'remediation';
      expected.metadata.labels = { ...metadataOf(rendered).labels, ...expected.metadata.labels };
      expected.spec.serviceAccountName = 'fixer';
      if (expected.spec.artifactGC) expected.spec.artifactGC.serviceAccountName = 'fixer';
      // Byte-equal strings prove that Helm left Argo's {{...}} expressions alone.
      assert.deepEqual(rendered, expected, name);
    }
  });

  it("give artifact garbage collection the workflows' ServiceAccount where a template collects artifacts", async () => {
    const objects = await render();
    const collecting = ofKind<{ metadata: V1ObjectMeta; spec: { artifactGC?: { serviceAccountName?: string } } }>(
      objects,
      'WorkflowTemplate',
    ).filter((t) => t.spec.artifactGC);
    assert.ok(
      collecting.some((t) => t.metadata.name === 'restart-with-backup'),
      'restart-with-backup sets artifactGC',
    );
    for (const template of collecting)
      assert.equal(template.spec.artifactGC?.serviceAccountName, 'argo-workflow', template.metadata.name);
  });

  it('are not rendered with workflowTemplates.enabled=false', async () => {
    assert.equal(ofKind(await render(['workflowTemplates.enabled=false']), 'WorkflowTemplate').length, 0);
  });
});

describe('ServiceMonitor and PrometheusRule', () => {
  it("scrape /metrics through the receiver Service's named port", async () => {
    const objects = await render(['serviceMonitor.enabled=true', 'serviceMonitor.labels.release=prometheus']);
    const monitor = one<ServiceMonitor>(objects, 'ServiceMonitor', RELEASE_NAME, 'monitoring.coreos.com/v1');
    const service = one<V1Service>(objects, 'Service', RELEASE_NAME);
    assert.equal(monitor.metadata.labels?.release, 'prometheus');
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels))
      assert.equal(service.metadata?.labels?.[key], value, key);
    assert.deepEqual(monitor.spec.namespaceSelector?.matchNames, [RELEASE_NAMESPACE]);
    const endpoint = monitor.spec.endpoints[0];
    assert.equal(endpoint?.path, '/metrics');
    assert.ok(service.spec?.ports?.some((p) => p.name === endpoint?.port));
  });

  it('alert on permanent and transient submission failures, store errors, rate limiting, failed reloads and a down receiver', async () => {
    const rule = one<PrometheusRule>(
      await render(['prometheusRule.enabled=true']),
      'PrometheusRule',
      RELEASE_NAME,
      'monitoring.coreos.com/v1',
    );
    const alerts = new Map(rule.spec.groups.flatMap((g) => g.rules).map((r) => [r.alert, r]));
    const expectations: ReadonlyArray<[string, RegExp]> = [
      [
        'KubeSentinelSubmissionsFailing',
        /kube_sentinel_submissions_total\{result="permanent",job="kube-sentinel",namespace="kube-sentinel"\}/,
      ],
      ['KubeSentinelSubmissionsRetrying', /kube_sentinel_submissions_total\{result="transient",/],
      ['KubeSentinelCooldownStoreErrors', /kube_sentinel_cooldown_store_errors_total\{/],
      ['KubeSentinelRateLimited', /kube_sentinel_decisions_total\{outcome="rate_limited",/],
      ['KubeSentinelRulesReloadFailing', /kube_sentinel_rules_last_reload_success\{.*\}\) == 0/],
      ['KubeSentinelDown', /absent\(up\{job="kube-sentinel",namespace="kube-sentinel"\} == 1\)/],
    ];
    for (const [alert, expr] of expectations) {
      const entry = alerts.get(alert);
      assert.ok(entry, `no ${alert}`);
      assert.match(entry.expr, expr, alert);
      assert.ok(['warning', 'critical'].includes(entry.labels?.severity ?? ''), `${alert} severity`);
      assert.ok(entry.annotations?.summary, `${alert} summary`);
    }
    assert.match(
      alerts.get('KubeSentinelSubmissionsFailing')?.annotations?.summary ?? '',
      /\{\{ \$labels\.template \}\}/,
    );
  });

  describe('what became of the Workflows (SPEC §9)', () => {
    const runbook = 'https://github.com/kube-sentinel/kube-sentinel/blob/main/docs/runbooks/escalations.md';
    async function closedLoopAlerts(set: string[] = []) {
      const rule = one<PrometheusRule>(
        await render(['prometheusRule.enabled=true', ...set]),
        'PrometheusRule',
        RELEASE_NAME,
        'monitoring.coreos.com/v1',
      );
      return new Map(rule.spec.groups.flatMap((g) => g.rules).map((r) => [r.alert, r]));
    }
    const expectations: ReadonlyArray<[string, string, string]> = [
      [
        'KubeSentinelRemediationsFailing',
        'kube_sentinel_remediations_total{state=~"failed|unknown",job="kube-sentinel",namespace="kube-sentinel"}',
        'warning',
      ],
      [
        'KubeSentinelAttemptBudgetSpent',
        'kube_sentinel_decisions_total{outcome="escalated",job="kube-sentinel",namespace="kube-sentinel"}',
        'critical',
      ],
      [
        'KubeSentinelEscalationsUndelivered',
        'kube_sentinel_escalations_total{result="failed",job="kube-sentinel",namespace="kube-sentinel"}',
        'critical',
      ],
    ];

    it('warn after 10 minutes of a failing Workflow watch, per pod and watched namespace, linking the runbook', async () => {
      const alerts = await closedLoopAlerts();
      const watch = alerts.get('KubeSentinelWorkflowWatchFailing');
      assert.ok(watch);
      assert.equal(watch.for, '10m');
      assert.match(
        watch.expr,
        /^min by \(pod, workflow_namespace\) \(kube_sentinel_workflow_watch_healthy\{job="kube-sentinel",namespace="kube-sentinel"\}\) == 0$/,
      );
      assert.equal(watch.labels?.severity, 'warning');
      assert.equal(watch.annotations?.runbook_url, `${runbook}#kubesentinelworkflowwatchfailing`);
      const text = readFileSync(join(REPO_ROOT, 'docs/runbooks/escalations.md'), 'utf8');
      assert.match(text, /^### KubeSentinelWorkflowWatchFailing$/m);
    });

    it('page on failed remediations, spent attempt budgets and undelivered escalations, linking the runbook', async () => {
      const alerts = await closedLoopAlerts();
      for (const [alert, series, severity] of expectations) {
        const entry = alerts.get(alert);
        assert.ok(entry, `no ${alert}`);
        assert.ok(entry.expr.includes(`increase(${series}[1h])`), `${alert}: ${entry.expr}`);
        assert.match(entry.expr, / > 0$/, alert);
        assert.equal(entry.for, undefined, `${alert} fires at once: each increase is an event`);
        assert.equal(entry.labels?.severity, severity, alert);
        assert.ok(entry.annotations?.summary, `${alert} summary`);
        assert.ok(entry.annotations?.description, `${alert} description`);
        assert.equal(entry.annotations?.runbook_url, `${runbook}#${alert.toLowerCase()}`);
      }
      assert.match(alerts.get('KubeSentinelRemediationsFailing')?.expr ?? '', /^sum by \(rule\)/);
      assert.match(
        alerts.get('KubeSentinelAttemptBudgetSpent')?.annotations?.summary ?? '',
        /\{\{ \$labels\.rule \}\}/,
      );
    });

    it('count a series born within the window, whose first increase increase() cannot see', async () => {
      const alerts = await closedLoopAlerts();
      for (const [alert, series] of expectations)
        assert.ok(alerts.get(alert)?.expr.includes(`(${series} unless ${series} offset 1h) or increase(`), alert);
    });

    it('leave failed remediations and spent budgets to the receiver once escalation.urls is set, and keep the delivery alert', async () => {
      const alerts = await closedLoopAlerts(['escalation.urls={http://alertmanager:9093}']);
      assert.equal(alerts.has('KubeSentinelRemediationsFailing'), false);
      assert.equal(alerts.has('KubeSentinelAttemptBudgetSpent'), false);
      assert.ok(alerts.has('KubeSentinelEscalationsUndelivered'));
      assert.ok(alerts.has('KubeSentinelSubmissionsFailing'));
    });

    it('link sections of docs/runbooks/escalations.md that exist, beside one per escalation the receiver sends', async () => {
      const text = readFileSync(join(REPO_ROOT, 'docs/runbooks/escalations.md'), 'utf8');
      // GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes.
      const anchors = new Set(
        [...text.matchAll(/^#+ (.+)$/gm)].map(([, heading]) =>
          (heading ?? '')
            .toLowerCase()
            .replace(/[^\w\- ]/g, '')
            .replaceAll(' ', '-'),
        ),
      );
      const alerts = await closedLoopAlerts();
      for (const [alert] of expectations) {
        const url = alerts.get(alert)?.annotations?.runbook_url ?? '';
        assert.ok(url.startsWith(`${runbook}#`) && anchors.has(url.slice(runbook.length + 1)), `${alert}: ${url}`);
      }
      for (const alertname of ESCALATION_ALERTNAMES) assert.ok(anchors.has(alertname.toLowerCase()), alertname);
    });

    it('point runbook_url where prometheusRule.runbookUrl says', async () => {
      const alerts = await closedLoopAlerts(['prometheusRule.runbookUrl=https://wiki.example.com/kube-sentinel']);
      assert.equal(
        alerts.get('KubeSentinelEscalationsUndelivered')?.annotations?.runbook_url,
        'https://wiki.example.com/kube-sentinel#kubesentinelescalationsundelivered',
      );
    });
  });

  it('use prometheusRule.selector when series come from another scrape job', async () => {
    const rule = one<PrometheusRule>(
      await render(['prometheusRule.enabled=true', 'prometheusRule.selector=job="kubernetes-pods"']),
      'PrometheusRule',
      RELEASE_NAME,
    );
    for (const entry of rule.spec.groups[0]!.rules) assert.match(entry.expr, /job="kubernetes-pods"/, entry.alert);
  });
});

/**
 * NOTES.txt as `helm install` would print it. helm renders it only when installing into a
 * cluster, so a copy of the chart renders it through `tpl` as an ordinary template instead.
 */
async function renderNotes(set: readonly string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'kube-sentinel-notes-'));
  try {
    const chart = join(dir, 'kube-sentinel');
    cpSync(CHART_DIR, chart, { recursive: true, dereference: true });
    renameSync(join(chart, 'templates/NOTES.txt'), join(chart, 'files/NOTES.txt'));
    writeFileSync(join(chart, 'templates/notes.yaml'), 'notes: {{ tpl (.Files.Get "files/NOTES.txt") . | toJson }}\n');
    const result = await helm([
      'template',
      RELEASE_NAME,
      chart,
      '--namespace',
      RELEASE_NAMESPACE,
      '--show-only',
      'templates/notes.yaml',
      ...set.flatMap((s) => ['--set', s]),
    ]);
    assert.equal(result.status, 0, result.stderr);
    return String(parseManifests(result.stdout)[0]?.notes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('NOTES.txt', () => {
  it('tells where to point Alertmanager, warns about no auth, and says cooldowns live in memory by default', async () => {
    const notes = await renderNotes([]);
    assert.match(notes, /http:\/\/kube-sentinel\.kube-sentinel\.svc:8080\/webhook\/alertmanager/);
    assert.match(
      notes,
      /kubectl auth can-i create workflows\.argoproj\.io -n argo --as=system:serviceaccount:kube-sentinel:kube-sentinel/,
    );
    assert.match(notes, /WARNING: no auth token/);
    assert.match(
      notes,
      /NOTE: no Redis .*: one replica, whose cooldowns, rate limit\nand audit trail live in its memory/,
    );
    const knative = await renderNotes(['knative.enabled=true']);
    assert.match(knative, /forgotten when the pod is replaced or scales to zero/);
    assert.match(knative, /knative\.minScale is 0: while scaled to zero nothing watches the Workflows/);
    assert.doesNotMatch(
      await renderNotes(['knative.enabled=true', 'knative.minScale=1']),
      /nothing watches the Workflows/,
    );
  });

  it('says how to open the page: a port-forward, or the Knative URL', async () => {
    assert.match(
      await renderNotes([]),
      /Its page [^\n]*\n {2}kubectl -n kube-sentinel port-forward svc\/kube-sentinel 8080:8080\n {2}then open http:\/\/localhost:8080\//,
    );
    assert.match(
      await renderNotes(['knative.enabled=true']),
      /Its page [^\n]*\n {2}http:\/\/kube-sentinel\.kube-sentinel\.svc\//,
    );
  });

  it('says how to opt out by annotation, and, with clusters.list, which RBAC the other clusters need', async () => {
    const notes = await renderNotes([]);
    assert.match(notes, /kubectl annotate namespace NAME kube-sentinel\.io\/remediation=disabled/);
    assert.doesNotMatch(notes, /other clusters/);
    const many = await renderNotes(['clusters.list[0].name=east', 'clusters.default=east']);
    assert.match(
      many,
      /other clusters of clusters\.list need the receiver's RBAC too[\s\S]*get\/list\/watch namespaces and apps deployments, statefulsets,\ndaemonsets \(opt-out annotations\)/,
    );
  });

  it('points out that a Sentinel or Cluster without redis.waitReplicas can lose a claim in a failover', async () => {
    const cluster = ['auth.existingSecret=token', 'redis.cluster.nodes={redis-cluster-0:6379}'];
    assert.match(await renderNotes(cluster), /NOTE: redis\.waitReplicas is 0: .*failover/);
    assert.doesNotMatch(await renderNotes([...cluster, 'redis.waitReplicas=1']), /NOTE/);
  });

  it('warns about neither once a token and Redis are set', async () => {
    const notes = await renderNotes(['auth.existingSecret=token', 'redis.enabled=true']);
    assert.doesNotMatch(notes, /WARNING|NOTE/);
  });
});

describe('the chart', () => {
  it('is a v2 chart named kube-sentinel for Kubernetes 1.25 and later', () => {
    const chart = parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'kube-sentinel');
    assert.equal(chart.version, '0.1.0');
    assert.equal(chart.appVersion, '0.1.0');
    assert.equal(chart.kubeVersion, '>=1.25.0-0');
  });

  it('documents every value of values.yaml in its README', () => {
    const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
    // Kubernetes objects passed through as they are get one row each, not one per field.
    const passThrough = new Set([
      'resources',
      'podSecurityContext',
      'securityContext',
      'redis.resources',
      'redis.podSecurityContext',
      'redis.securityContext',
    ]);
    const keys: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (
        !passThrough.has(path) &&
        node !== null &&
        typeof node === 'object' &&
        !Array.isArray(node) &&
        Object.keys(node).length > 0
      ) {
        for (const [key, child] of Object.entries(node)) walk(child, path === '' ? key : `${path}.${key}`);
      } else keys.push(path);
    };
    walk(values, '');
    const missing = keys.filter((key) => !readme.includes(`| \`${key}\` |`));
    assert.deepEqual(missing, []);
  });
});
