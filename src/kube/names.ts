/**
 * The name grammars Kubernetes and Argo enforce, in one place: the loader checks rule text against
 * them, the renderer checks alert labels, the settings check flags, and Workflow names and label
 * values are made to fit them.
 */

/** A DNS-1123 label: namespaces, container names, Workflow names. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS1123_LABEL_MAX = 63;
/** A DNS-1123 subdomain: pod names, WorkflowTemplates, service accounts. */
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const DNS1123_SUBDOMAIN_MAX = 253;
/** A label value (may be empty). */
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const LABEL_VALUE_MAX = 63;
/** The Argo CRD's pattern for parameter names; the API server refuses any other. */
export const PARAMETER_NAME = /^[-a-zA-Z0-9_]+$/;

const IMAGE_TAG = /^[\w][\w.-]{0,127}$/;
const IMAGE_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;

/** Why a value is not a DNS-1123 label, or null. */
export function dnsLabelProblem(value: string): string | null {
  if (value.length > DNS1123_LABEL_MAX) return `must be at most ${DNS1123_LABEL_MAX} characters`;
  if (!DNS1123_LABEL.test(value)) {
    return "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit";
  }
  return null;
}

/** Why a value is not a DNS-1123 subdomain, or null. */
export function dnsSubdomainProblem(value: string): string | null {
  if (value.length > DNS1123_SUBDOMAIN_MAX) return `must be at most ${DNS1123_SUBDOMAIN_MAX} characters`;
  if (!DNS1123_SUBDOMAIN.test(value)) {
    return "must be a DNS-1123 name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";
  }
  return null;
}

/** Why an image reference is not pinned, or null when it is (a non-latest tag, or a digest). */
export function imageProblem(image: string): string | null {
  if (image.length === 0 || /\s/.test(image)) return 'is not a valid image reference';
  const at = image.indexOf('@');
  if (at >= 0) return IMAGE_DIGEST.test(image.slice(at + 1)) ? null : 'has an invalid digest';
  const colon = image.lastIndexOf(':');
  // A colon before the last '/' is a registry port (`registry:5000/kubectl`), not a tag.
  if (colon <= image.lastIndexOf('/')) return 'must be pinned to a tag or digest (it has neither)';
  const tag = image.slice(colon + 1);
  if (tag === 'latest') return 'must be pinned: ":latest" moves under you';
  return IMAGE_TAG.test(tag) ? null : `has an invalid tag ${JSON.stringify(tag)}`;
}

/** A run of DNS-1123 label characters from arbitrary text (`My Rule!` → `my-rule`), possibly empty. */
export function toDnsLabelPart(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** A Kubernetes label value from arbitrary text, e.g. a rule name with spaces. */
export function toLabelValue(text: string): string {
  if (text.length <= LABEL_VALUE_MAX && LABEL_VALUE.test(text)) return text;
  return text
    .replace(/[^-A-Za-z0-9_.]+/g, '-')
    .slice(0, LABEL_VALUE_MAX)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

/** The environment variable an inline script reads a parameter from: `my-arg` → `MY_ARG`; a leading digit is prefixed. */
export function envName(parameterName: string): string {
  const name = parameterName.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}
