/** The subset of argoproj.io/v1alpha1 Workflow that Kube Sentinel writes. Field names as in the CRD. */

export const ARGO_GROUP = 'argoproj.io';
export const ARGO_VERSION = 'v1alpha1';
export const WORKFLOW_PLURAL = 'workflows';

export const LabelKey = {
  ManagedBy: 'app.kubernetes.io/managed-by',
  Rule: 'kube-sentinel.io/rule',
  Priority: 'kube-sentinel.io/priority',
} as const;

export const AnnotationKey = {
  AlertName: 'kube-sentinel.io/alertname',
  Fingerprint: 'kube-sentinel.io/fingerprint',
  CooldownKey: 'kube-sentinel.io/cooldown-key',
  Target: 'kube-sentinel.io/target',
} as const;

export const MANAGED_BY = 'kube-sentinel';

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
