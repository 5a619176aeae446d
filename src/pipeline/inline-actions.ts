import type { InlineAction } from '../rules/types.js';

/** Pinned: has /bin/sh and kubectl. A moving tag would change what remediations run without a release. */
export const DEFAULT_IMAGE = 'docker.io/alpine/k8s:1.33.1';

/** Collecting evidence is the safe default: an inline workflow without an action never disrupts anything. */
export const DEFAULT_INLINE_ACTION: InlineAction = 'diagnose';

/*
 * The scripts see the alert only through the environment variables the Workflow sets from its
 * parameters (NAMESPACE, POD, CONTAINER); every expansion is double-quoted, so a value is always
 * one argument and never shell syntax. Nothing here may contain `{{`: Argo substitutes those in
 * `source`, which would paste values into the script text.
 */

const PREAMBLE = `set -eu
: "\${NAMESPACE:?the alert has no namespace label}"
: "\${POD:?the alert has no pod label}"
CONTAINER="\${CONTAINER:-}"
`;

/** Without a container label, logs of every container: kubectl refuses a multi-container pod otherwise. */
const CONTAINER_ARGS = `if [ -n "$CONTAINER" ]; then
  set -- -c "$CONTAINER"
else
  set -- --all-containers=true
fi
`;

const DESCRIBE = `echo "=== describe pod $NAMESPACE/$POD"
kubectl describe pod "$POD" -n "$NAMESPACE"
`;

/** A container that never ran has no previous logs; that is an answer, not a failure. */
function logs(currentMayFail: boolean): string {
  return `echo "=== logs (current)"
kubectl logs "$POD" -n "$NAMESPACE" "$@" --tail=500${currentMayFail ? ' || echo "no current logs"' : ''}
echo "=== logs (previous)"
kubectl logs "$POD" -n "$NAMESPACE" "$@" --tail=500 --previous || true
`;
}

const EVENTS = `echo "=== events of $NAMESPACE/$POD"
kubectl get events -n "$NAMESPACE" --field-selector involvedObject.name="$POD" --sort-by=.lastTimestamp
`;

// metrics-server is optional in a cluster; its absence must not fail the diagnosis.
const TOP = `echo "=== resource usage"
kubectl top pod "$POD" -n "$NAMESPACE" --containers || echo "kubectl top unavailable (is metrics-server installed?)"
`;

/*
 * Only a pod a controller owns is evicted: a bare pod would be gone for good, and a static pod's
 * mirror comes back unchanged. Eviction, not DELETE: the API server first checks the pod's PodDisruptionBudget and answers 429
 * TooManyRequests when it allows no disruption now; the step then fails with the API server's
 * words (also as the container's termination message, which Argo shows as the step's message).
 * A pod already gone is nothing to restart. The names go into a URL path, so they must be
 * Kubernetes names: no "/", no "..", nothing that would point the request elsewhere. The body
 * puts metadata first so that no "}}" reaches Argo, which substitutes templates in the source.
 */
const RESTART = `case "$NAMESPACE" in
  *[!a-z0-9-]* | [!a-z0-9]* | *[!a-z0-9])
    echo "refusing to evict: namespace must be a DNS-1123 label, got: '$NAMESPACE'" >&2
    exit 2 ;;
esac
case "$POD" in
  *[!a-z0-9.-]* | [!a-z0-9]* | *[!a-z0-9])
    echo "refusing to evict: pod must be a DNS-1123 subdomain, got: '$POD'" >&2
    exit 2 ;;
esac
fail() {
  echo "$1" >&2
  if [ -w /dev/termination-log ]; then printf '%s\\n' "$1" >/dev/termination-log; fi
  exit 1
}
if owner=$(kubectl get pod "$POD" -n "$NAMESPACE" -o jsonpath='{range .metadata.ownerReferences[?(@.controller==true)]}{.kind}/{.name}{end}' 2>&1); then
  case "$owner" in
    "") fail "refusing to evict pod $NAMESPACE/$POD: no controller owns it, so nothing would recreate it" ;;
    Node/*) fail "refusing to evict pod $NAMESPACE/$POD: a static pod ($owner) runs from its kubelet's manifest; evicting its mirror restarts nothing" ;;
  esac
else
  case "$owner" in
    *"(NotFound)"*"pods \\"$POD\\" not found"*)
      echo "pod $NAMESPACE/$POD is already gone: nothing to restart"
      exit 0 ;;
    *) fail "cannot read pod $NAMESPACE/$POD: $owner" ;;
  esac
fi
echo "=== evicting pod $NAMESPACE/$POD ($owner recreates it)"
if failure=$(printf '{"metadata":{"name":"%s","namespace":"%s"},"apiVersion":"policy/v1","kind":"Eviction"}' "$POD" "$NAMESPACE" |
  kubectl create --raw "/api/v1/namespaces/$NAMESPACE/pods/$POD/eviction" -f - 2>&1 >/dev/null); then
  echo "evicted pod $NAMESPACE/$POD"
else
  case "$failure" in
    *"(NotFound)"*"pods \\"$POD\\" not found"*)
      echo "pod $NAMESPACE/$POD is already gone: nothing to restart" ;;
    *)
      echo "PodDisruptionBudgets in namespace $NAMESPACE:" >&2
      kubectl get poddisruptionbudgets -n "$NAMESPACE" >&2 || true
      fail "eviction of pod $NAMESPACE/$POD failed: $failure" ;;
  esac
fi
`;

export const INLINE_SCRIPTS: Record<InlineAction, string> = {
  restart: PREAMBLE + RESTART,
  describe: PREAMBLE + DESCRIBE,
  logs: PREAMBLE + CONTAINER_ARGS + logs(false),
  events: PREAMBLE + EVENTS,
  // Collects as much evidence as it can: only a pod that cannot be described fails the diagnosis.
  diagnose: PREAMBLE + CONTAINER_ARGS + DESCRIBE + logs(true) + EVENTS + TOP,
};
