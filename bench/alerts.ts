/**
 * The alert streams every scenario sends: realistic Kubernetes alerts in the two intake shapes
 * (Alertmanager webhook v4, Alertmanager v2 postable alerts as Prometheus and the Loki ruler post
 * them). Shared by the bench runner, the load generator child and the in-process scenarios, so
 * the baseline and Kube Sentinel always receive byte-identical bodies.
 */

/** Kubernetes' generated-name alphabet, so pod suffixes strip to their Deployment like real ones. */
const GENERATED = 'bcdfghjklmnpqrstvwxz2456789';

export const NAMESPACES = ['shop', 'payments', 'search', 'auth', 'media'] as const;
const SERVICES = ['checkout', 'cart', 'api', 'worker'] as const;

export interface LabelledAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function generated(seed: number, length: number): string {
  let text = '';
  let state = (seed * 2654435761) >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    text += GENERATED[(state >>> 16) % GENERATED.length];
  }
  return text;
}

export function podName(workload: string, seed: number): string {
  return `${workload}-${generated(seed, 9)}-${generated(seed + 7919, 5)}`;
}

/**
 * One alert a default rule acts on; `kind` rotates through the default rules' error classes
 * (crash loop, OOM, image pull, a log burst naming a refused connection).
 */
export function remediableAlert(namespace: string, workload: string, podSeed: number, kind: number): LabelledAlert {
  const pod = podName(workload, podSeed);
  const container = workload.split('-')[0] ?? workload;
  const common = {
    namespace,
    pod,
    container,
    job: 'kube-state-metrics',
    prometheus: 'monitoring/k8s',
    cluster: 'prod-eu-1',
  };
  switch (kind % 4) {
    case 0:
      return {
        labels: { alertname: 'KubePodCrashLooping', severity: 'warning', ...common },
        annotations: {
          description: `Pod ${namespace}/${pod} (${container}) is in waiting state (reason: "CrashLoopBackOff").`,
          summary: 'Pod is crash looping.',
          runbook_url: 'https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping',
        },
      };
    case 1:
      return {
        labels: { alertname: 'KubeContainerOOMKilled', severity: 'critical', ...common },
        annotations: {
          description: `Container ${container} in ${namespace}/${pod} was OOMKilled 3 times in the last 15 minutes.`,
          summary: 'Container killed for running out of memory.',
          runbook_url: 'https://runbooks.example.com/kube-sentinel/container-oomkilled',
        },
      };
    case 2:
      return {
        labels: { alertname: 'KubePodNotReady', severity: 'warning', reason: 'ImagePullBackOff', ...common },
        annotations: {
          description: `Pod ${namespace}/${pod} has been in a non-ready state for longer than 15 minutes (ImagePullBackOff).`,
          summary: 'Pod has been in a non-ready state for more than 15 minutes.',
          runbook_url: 'https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodnotready',
        },
      };
    default:
      return {
        labels: { alertname: 'ContainerErrorLogBurst', severity: 'critical', team: namespace, ...common },
        annotations: {
          description: `37 error lines in the last 5 minutes (threshold > 20): dial tcp 10.0.3.7:5432: connect: connection refused`,
          summary: `Container ${container} in ${namespace}/${pod} is logging errors`,
          runbook_url: 'https://runbooks.example.com/kube-sentinel/container-error-log-burst',
        },
      };
  }
}

/** An alert no default rule matches: most of what a real Alertmanager routes is not for Kube Sentinel. */
export function unmatchedAlert(namespace: string, workload: string, podSeed: number, kind: number): LabelledAlert {
  const pod = podName(workload, podSeed);
  const common = { namespace, pod, job: 'kube-state-metrics', prometheus: 'monitoring/k8s', cluster: 'prod-eu-1' };
  if (kind % 2 === 0) {
    return {
      labels: { alertname: 'KubeDeploymentReplicasMismatch', severity: 'warning', deployment: workload, ...common },
      annotations: {
        description: `Deployment ${namespace}/${workload} has not matched the expected number of replicas for longer than 15 minutes.`,
        summary: 'Deployment has not matched the expected number of replicas.',
        runbook_url: 'https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubedeploymentreplicasmismatch',
      },
    };
  }
  return {
    labels: { alertname: 'HighRequestLatency', severity: 'warning', service: workload, ...common },
    annotations: {
      description: `p99 latency of ${namespace}/${workload} is 1.73s (threshold 1s) over the last 10 minutes.`,
      summary: 'Requests are slow.',
      runbook_url: 'https://runbooks.example.com/slo/high-request-latency',
    },
  };
}

/**
 * A fixed set of alerts over 20 workloads (5 namespaces × 4 services), several pods each: the
 * stream of a cluster with a few sick Deployments whose alerts keep coming back.
 */
export function alertSet(count: number, make: typeof remediableAlert): LabelledAlert[] {
  const alerts: LabelledAlert[] = [];
  for (let i = 0; i < count; i++) {
    const namespace = NAMESPACES[i % NAMESPACES.length]!;
    const service = SERVICES[Math.floor(i / NAMESPACES.length) % SERVICES.length]!;
    alerts.push(make(namespace, service, i, Math.floor(i / (NAMESPACES.length * SERVICES.length)) + i));
  }
  return alerts;
}

/** A remediable alert whose workload (so its cooldown key) was never seen: the submit path. */
export function newAlert(tag: string, counter: number): LabelledAlert {
  const namespace = NAMESPACES[counter % NAMESPACES.length]!;
  return remediableAlert(namespace, `svc-${tag}-${counter}`, counter, counter);
}

const STARTS_AT = '2026-11-26T11:59:00.000Z';
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** A group as Alertmanager 0.25+ posts it to a webhook_config. */
export function webhookBody(alerts: readonly LabelledAlert[]): string {
  const first = alerts[0]!;
  const common = (pick: (a: LabelledAlert) => Record<string, string>) =>
    Object.fromEntries(Object.entries(pick(first)).filter(([k, v]) => alerts.every((a) => pick(a)[k] === v)));
  return JSON.stringify({
    receiver: 'kube-sentinel',
    status: 'firing',
    alerts: alerts.map((a) => ({
      status: 'firing',
      labels: a.labels,
      annotations: a.annotations,
      startsAt: STARTS_AT,
      endsAt: ZERO_TIME,
      generatorURL:
        'http://prometheus.monitoring.svc:9090/graph?g0.expr=increase%28kube_pod_container_status_restarts_total%5B10m%5D%29+%3E+0',
      fingerprint: fingerprintHex(a.labels),
    })),
    groupLabels: { alertname: first.labels.alertname, namespace: first.labels.namespace },
    commonLabels: common((a) => a.labels),
    commonAnnotations: common((a) => a.annotations),
    externalURL: 'http://alertmanager.monitoring.svc:9093',
    version: '4',
    groupKey: `{}:{alertname="${first.labels.alertname}", namespace="${first.labels.namespace}"}`,
    truncatedAlerts: 0,
  });
}

/**
 * What Prometheus / the Loki ruler POST to /api/v2/alerts: no status, endsAt in the future while
 * firing (they resend before it passes). `endsAt` is set by the caller so a long run stays firing.
 */
export function postableBody(alerts: readonly LabelledAlert[], endsAt: string): string {
  return JSON.stringify(
    alerts.map((a) => ({
      labels: a.labels,
      annotations: a.annotations,
      startsAt: STARTS_AT,
      endsAt,
      generatorURL:
        'http://prometheus.monitoring.svc:9090/graph?g0.expr=increase%28kube_pod_container_status_restarts_total%5B10m%5D%29+%3E+0',
    })),
  );
}

/** Splits alerts into bodies of `size` alerts each. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Any stable 16-hex-digit id: Alertmanager's real fingerprint is not what is measured here. */
function fingerprintHex(labels: Record<string, string>): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const key of Object.keys(labels).sort()) {
    const text = `${key}\u00ff${labels[key]}\u00ff`;
    for (let i = 0; i < text.length; i++) {
      h1 = Math.imul(h1 ^ text.charCodeAt(i), 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ text.charCodeAt(i), 0x5bd1e995) >>> 0;
    }
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}
