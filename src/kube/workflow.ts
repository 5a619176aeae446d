import { hash } from 'node:crypto';

/** The subset of argoproj.io/v1alpha1 Workflow that Kube Sentinel writes. Field names as in the CRD. */

export const ARGO_GROUP = 'argoproj.io';
export const ARGO_VERSION = 'v1alpha1';
export const WORKFLOW_PLURAL = 'workflows';

/** The phases Argo gives a Workflow, or one of its nodes, that failed. */
export const FAILED_PHASES: ReadonlySet<string> = new Set(['Failed', 'Error']);

export const LabelKey = {
  ManagedBy: 'app.kubernetes.io/managed-by',
  Rule: 'kube-sentinel.io/rule',
  Priority: 'kube-sentinel.io/priority',
  /** A hash of the cooldown key (keyHash): the cluster's own record of which key a Workflow remediates. */
  KeyHash: 'kube-sentinel.io/key-hash',
} as const;

/** Labels Argo's controller sets on a Workflow. */
export const ArgoLabel = {
  Completed: 'workflows.argoproj.io/completed',
  Phase: 'workflows.argoproj.io/phase',
  /** Who last acted on it (resume, stop), when Argo's server knows the user. */
  Actor: 'workflows.argoproj.io/actor',
} as const;

export const AnnotationKey = {
  AlertName: 'kube-sentinel.io/alertname',
  Fingerprint: 'kube-sentinel.io/fingerprint',
  CooldownKey: 'kube-sentinel.io/cooldown-key',
  Target: 'kube-sentinel.io/target',
  /** The rule's name as written (the label is cut to label syntax). */
  Rule: 'kube-sentinel.io/rule',
  /** The workload of the target (the cooldown key's), empty when none. */
  Workload: 'kube-sentinel.io/workload',
  /** Which attempt within the rule's attempt_window this Workflow is (1, 2, …). */
  Attempt: 'kube-sentinel.io/attempt',
  /** Seconds a suspended Workflow waits for approval before Kube Sentinel stops it (approval rules only). */
  ApprovalTimeout: 'kube-sentinel.io/approval-timeout',
  /** The rule's runbook_url, for escalations. */
  RunbookUrl: 'kube-sentinel.io/runbook-url',
  /** Why Kube Sentinel stopped it (set with spec.shutdown): its remediation is `cancelled`, not `failed`. */
  Stopped: 'kube-sentinel.io/stopped',
  /** With --clusters: the configured cluster it was created in (the API server it lives on knows it by no other name). */
  Cluster: 'kube-sentinel.io/cluster',
} as const;

export const MANAGED_BY = 'kube-sentinel';

/** The label selector of every Workflow Kube Sentinel created. */
export const MANAGED_SELECTOR = 'app.kubernetes.io/managed-by=kube-sentinel';

/** The value of the key-hash label: a cooldown key can be long and hold any character, a label value cannot. */
export function keyHash(cooldownKey: string): string {
  return hash('sha256', cooldownKey, 'hex').slice(0, 40);
}

/** Parameters every Workflow carries, in this order (SPEC §5); a rule argument must not shadow them. */
export const BUILT_IN_PARAMETERS = ['namespace', 'pod', 'container', 'alertname', 'priority', 'rule'] as const;

/**
 * Environment an inline workflow's container sets for itself, beside one variable per parameter:
 * kubectl keeps its cache under $HOME, which is an emptyDir because the root filesystem is read-only.
 */
export const INLINE_ENV = { HOME: '/tmp' } as const;

export interface Parameter {
  name: string;
  value: string;
}

export interface EnvVar {
  name: string;
  value: string;
}

export interface ScriptTemplate {
  name: string;
  inputs?: { parameters: { name: string }[] };
  script: {
    image: string;
    command: string[];
    source: string;
    env: EnvVar[];
    volumeMounts: { name: string; mountPath: string }[];
    resources: {
      requests: Record<string, string>;
      limits: Record<string, string>;
    };
    securityContext: {
      runAsNonRoot: boolean;
      runAsUser: number;
      allowPrivilegeEscalation: boolean;
      readOnlyRootFilesystem: boolean;
      capabilities: { drop: string[] };
    };
  };
}

export interface WorkflowSpec {
  arguments: { parameters: Parameter[] };
  workflowTemplateRef?: { name: string; clusterScope?: boolean };
  entrypoint?: string;
  templates?: ScriptTemplate[];
  serviceAccountName?: string;
  ttlStrategy: {
    secondsAfterCompletion: number;
    secondsAfterSuccess: number;
    secondsAfterFailure: number;
  };
  podGC?: { strategy: string };
  volumes?: { name: string; emptyDir: Record<string, never> }[];
  activeDeadlineSeconds?: number;
  /** Created suspended: waits for a person's approval (`argo resume`). */
  suspend?: boolean;
}

export interface Workflow {
  apiVersion: 'argoproj.io/v1alpha1';
  kind: 'Workflow';
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  spec: WorkflowSpec;
}

/**
 * A Workflow as the watcher keeps it: what the Argo controller and people change (phase, the
 * suspend flag, the actor label) and what Kube Sentinel wrote at creation. Other fields are dropped.
 */
export interface WatchedWorkflow {
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: { suspend?: boolean; shutdown?: string };
  status?: {
    phase?: string;
    message?: string;
    startedAt?: string;
    finishedAt?: string;
    /**
     * Of a failed Workflow, its first failed step and that step's message (`evict-pod: …`), read
     * from status.nodes: Argo's own message for a Workflow of steps only says which child failed.
     */
    failedStep?: string;
  };
}
