import { hash } from 'node:crypto';
import { type Alert, own } from '../alert.js';
import { DNS1123_LABEL_MAX, toDnsLabelPart } from '../kube/names.js';
import { WORKLOAD_KINDS, type WorkloadKind } from '../kube/opt-out.js';
import type { Rule } from '../rules/types.js';

/**
 * The alphabet Kubernetes uses for generated name parts (rand.SafeEncodeString: no vowels, no
 * 0/1/3, so generated suffixes never spell words). Restricting suffix stripping to it keeps
 * ordinary names such as `my-app-cache` intact.
 */
const GENERATED = '[bcdfghjklmnpqrstvwxz2456789]';

/**
 * Controller-generated pod name suffixes, tried in this order; the first that matches is stripped.
 * Each says which kinds of workload leave it (SPEC §11 reads those for an opt-out).
 */
const POD_SUFFIXES: readonly { shape: RegExp; kinds: readonly WorkloadKind[] }[] = [
  // Deployment: <name>-<pod-template-hash>-<random>
  { shape: new RegExp(`^(.+)-${GENERATED}{5,10}-${GENERATED}{5}$`), kinds: ['Deployment'] },
  // StatefulSet: <name>-<ordinal>
  { shape: /^(.+)-\d+$/, kinds: ['StatefulSet'] },
  // A Deployment's pod whose `<name>-<hash>-` the API server cut to 58 characters before the
  // random 5 (a name of 47 characters or more): 63 characters, the hash run into the random part
  // (`<name>-<hash cut short><random>`), or gone (`<name>-<random>`, which a DaemonSet leaves too).
  // A name of 58 characters or more cannot be told from its pods' names: give the alert a
  // `deployment` label.
  { shape: new RegExp(`^(?=.{63}$)(.+)-${GENERATED}{6,15}$`), kinds: ['Deployment'] },
  { shape: new RegExp(`^(?=.{63}$)(.+)-${GENERATED}{5}$`), kinds: ['Deployment'] },
  // DaemonSet, Job, bare ReplicaSet: <name>-<random>
  { shape: new RegExp(`^(.+)-${GENERATED}{5}$`), kinds: ['DaemonSet'] },
];

/**
 * Labels that name the workload directly, most specific first (kube-state-metrics and common
 * relabelings), with the kind each names; a Job cannot opt out by annotation (SPEC §11).
 */
const WORKLOAD_LABELS: readonly (readonly [string, readonly WorkloadKind[]])[] = [
  ['deployment', ['Deployment']],
  ['statefulset', ['StatefulSet']],
  ['daemonset', ['DaemonSet']],
  ['job_name', []],
];

/** The workload an alert is about, and the kinds of object it may be. */
export interface WorkloadRef {
  name: string;
  kinds: readonly WorkloadKind[];
}

/**
 * The workload an alert is about: a workload label when the alert carries one, else the pod's
 * name without the suffixes its controller generated, else null. An empty label counts as absent,
 * as it does in Alertmanager.
 */
export function workloadOf(labels: Record<string, string>): string | null {
  for (const [label] of WORKLOAD_LABELS) {
    const value = labels[label];
    if (value) return value;
  }
  const pod = labels.pod;
  return pod ? stripSuffix(pod).name : null;
}

/** The pod's name without its generated suffix, and which of POD_SUFFIXES matched (-1: none). */
function stripSuffix(pod: string): { name: string; matched: number } {
  for (const [matched, suffix] of POD_SUFFIXES.entries()) {
    const stripped = suffix.shape.exec(pod)?.[1];
    if (stripped !== undefined) return { name: stripped, matched };
  }
  return { name: pod, matched: -1 };
}

/**
 * workloadOf, with the kinds it may be: the kind its label names; for a pod name, every kind whose
 * suffix shape gives the same name (`web-24567` may be StatefulSet web's pod 24567 or a DaemonSet
 * web's pod); for a pod name no shape fits, any of the three.
 */
export function workloadRefOf(labels: Record<string, string>): WorkloadRef | null {
  for (const [label, kinds] of WORKLOAD_LABELS) {
    const value = labels[label];
    if (value) return { name: value, kinds };
  }
  const pod = labels.pod;
  if (!pod) return null;
  const { name, matched } = stripSuffix(pod);
  if (matched < 0) return { name, kinds: WORKLOAD_KINDS };
  const kinds = POD_SUFFIXES.slice(matched)
    .filter((suffix) => suffix.shape.exec(pod)?.[1] === name)
    .flatMap((suffix) => suffix.kinds);
  return { name, kinds };
}

/**
 * The key a rule's cooldown is claimed under. Always prefixed by the rule's name so that rules
 * never block each other; by default namespace + workload, so every pod of one Deployment shares
 * one remediation per cooldown window.
 *
 * Unambiguous: two different label sets never share a key. The rule's name (a DNS-1123 label)
 * ends at the first `:`; each label value is written with `%`, `/`, `,`, `=` and `:` percent-encoded
 * (`%25`, `%2F`, `%2C`, `%3D`, `%3A`), so the separators in what follows are always the key's own:
 *   default             rule:namespace/workload         (no `:` and no `=` after the rule)
 *   cooldown_key        rule:name=value,name=value      (label names never hold `=` or `,`)
 *   no workload         rule:fingerprint:<fingerprint>
 *   too long            rule:sha256:<hex of the readable key>
 * Ordinary values (DNS names, plain words) are written as they are.
 *
 * With --clusters the key starts with the cluster: `cluster/rule:…`, so the same workload in two
 * clusters has two cooldowns. A cluster's name is a DNS-1123 label, and a `/` before the first
 * `:` is only ever the cluster's. Without --clusters keys are as they always were.
 */
export function cooldownKey(alert: Alert, rule: Rule, cluster?: string): string {
  const scope = cluster === undefined ? rule.name : `${cluster}/${rule.name}`;
  const key = `${scope}:${readableCooldownKey(alert, rule)}`;
  // Label values are unbounded (a 1 MB label is a valid alert): a key that long would be stored in
  // Redis, the audit trail and every log line. Past the bound, the values are hashed instead.
  if (key.length <= COOLDOWN_KEY_MAX) return key;
  return `${scope}:sha256:${hash('sha256', key, 'hex')}`;
}

const COOLDOWN_KEY_MAX = 512;

/** The key after its `rule:` (or `cluster/rule:`). */
function readableCooldownKey(alert: Alert, rule: Rule): string {
  const labels = alert.labels;
  const names = rule.remediation.cooldownKey;
  if (names !== null) return names.map((name) => `${name}=${keyPart(own(labels, name) ?? '')}`).join(',');
  const workload = workloadOf(labels);
  if (workload !== null) return `${keyPart(labels.namespace ?? '')}/${keyPart(workload)}`;
  return `fingerprint:${keyPart(alert.fingerprint)}`;
}

/** The characters that separate a key's parts, and `%` itself, so that the encoding is reversible. */
const KEY_SEPARATORS = /[%/,=:]/g;

/** A label value as a part of a cooldown key: its separators percent-encoded, the rest unchanged. */
function keyPart(value: string): string {
  return value.replace(KEY_SEPARATORS, (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`);
}

const NAME_START = 'kube-sentinel-';
const SUFFIX_LENGTH = 10;
/** Used when a rule's name has no character that survives DNS-1123 sanitizing. */
const FALLBACK_PREFIX = 'workflow';

/**
 * metadata.name of the Workflow for one cooldown claim. Derived from the claim rather than
 * random, so a retry of a create that timed out but landed gets 409 AlreadyExists instead of
 * creating a duplicate; a new claim (new claimedAt) gets a new name.
 */
export function workflowNameFor(rule: Rule, cooldownKey: string, claimedAt: number): string {
  const suffix = hash('sha256', `${cooldownKey}\n${claimedAt}`, 'hex').slice(0, SUFFIX_LENGTH);
  return `${NAME_START}${namePrefixOf(rule)}-${suffix}`;
}

/** A rule's part of its Workflow names, worked out once per rule (every claim needs it). */
const namePrefixes = new WeakMap<Rule, string>();

function namePrefixOf(rule: Rule): string {
  let prefix = namePrefixes.get(rule);
  if (prefix === undefined) {
    const room = DNS1123_LABEL_MAX - NAME_START.length - 1 - SUFFIX_LENGTH;
    prefix =
      toDnsLabelPart(rule.remediation.params.workflowName ?? rule.name)
        .slice(0, room)
        .replace(/-+$/, '') || FALLBACK_PREFIX;
    namePrefixes.set(rule, prefix);
  }
  return prefix;
}
