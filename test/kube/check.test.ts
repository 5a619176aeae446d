/**
 * `kube-sentinel check`'s access questions, against a hand-written ClusterProbe: which verbs on
 * workflows it asks about in which namespace, which reads of Namespaces and workloads (opt-out
 * annotations), and what it prints when one is denied or cannot be asked. test/acceptance/check.test.ts drives the same through the CLI and the fake API server.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ClusterProbe,
  checkOptOutReads,
  checkPermissions,
  type ResourceAttributes,
  type WorkflowVerb,
} from '../../src/kube/check.js';
import { parseRulesText } from '../../src/rules/parse.js';
import { buildRuleSet } from '../../src/rules/rule-set.js';
import type { RuleSet } from '../../src/rules/types.js';

const RULES = `
rules:
  - name: crashloop
    match: {pattern: "CrashLoopBackOff"}
    priority: P3
    remediation: {action: trigger-argo-workflow, params: {workflow_template: diagnose-pod}}
  - name: oom
    match: {pattern: "OOMKilled"}
    priority: P2
    remediation: {action: trigger-argo-workflow, params: {workflow_template: diagnose-memory, namespace: ops}}
`;

function ruleSet(): RuleSet {
  const parsed = parseRulesText(RULES, 'rules.yaml');
  assert.deepEqual(parsed.errors, []);
  return buildRuleSet(parsed.rules, parsed.excludedNamespaces, ['rules.yaml']);
}

/**
 * Answers every access review from a table, `VERB NAMESPACE` for workflows and `VERB RESOURCE
 * NAMESPACE` (`*` for every namespace) for others → answer (allowed when absent), and records the
 * questions.
 */
function probe(answers: Record<string, boolean | { error: string }> = {}): ClusterProbe & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async template() {
      return 'found';
    },
    async mayAccessWorkflows(namespace: string, verb: WorkflowVerb) {
      asked.push(`${verb} ${namespace}`);
      return answers[`${verb} ${namespace}`] ?? true;
    },
    async mayAccess(attributes: ResourceAttributes) {
      const resource = attributes.group === '' ? attributes.resource : `${attributes.resource}.${attributes.group}`;
      const name = attributes.name === undefined ? '' : `/${attributes.name}`;
      const question = `${attributes.verb} ${resource}${name} ${attributes.namespace ?? '*'}`;
      asked.push(question);
      return answers[question] ?? true;
    },
  };
}

const IDENTITY = { user: 'system:serviceaccount:kube-sentinel:kube-sentinel' };

describe('check of the receiver permissions on workflows', () => {
  it('asks whether it may create, get, list, watch and patch workflows in every target namespace', async () => {
    const fake = probe();
    const results = await checkPermissions(ruleSet(), 'argo', fake, IDENTITY);
    assert.deepEqual(fake.asked.sort(), [
      'create argo',
      'create ops',
      'get argo',
      'get ops',
      'list argo',
      'list ops',
      'patch argo',
      'patch ops',
      'watch argo',
      'watch ops',
    ]);
    assert.deepEqual(
      results.map((result) => [result.ok, result.what]),
      [
        [true, 'create workflows.argoproj.io in namespace ops (rules: oom)'],
        [true, 'get, list, watch and patch workflows.argoproj.io in namespace ops (rules: oom)'],
        [true, 'create workflows.argoproj.io in namespace argo (rules: crashloop)'],
        [true, 'get, list, watch and patch workflows.argoproj.io in namespace argo (rules: crashloop)'],
      ],
    );
  });

  it('fails on a denied watch verb, naming it, why it is needed, the rule that grants it and the can-i command', async () => {
    const results = await checkPermissions(ruleSet(), 'argo', probe({ 'patch ops': false }), IDENTITY);
    const failed = results.filter((result) => !result.ok);
    assert.equal(failed.length, 1);
    assert.deepEqual(failed[0], {
      ok: false,
      what: 'get, list, watch and patch workflows.argoproj.io in namespace ops (rules: oom)',
      problem:
        'the receiver may not patch workflows in ops: it needs get, list and watch to follow what became of the Workflows it creates, and patch to stop one whose approval expired or whose alert resolved',
      fix: "add to the receiver's Role in ops the rule {apiGroups: [argoproj.io], resources: [workflows], verbs: [get, list, watch, patch]} (the chart's Role has it in workflow.namespace and each of rbac.extraWorkflowNamespaces: upgrade the chart); verify: kubectl auth can-i patch workflows.argoproj.io -n ops --as=system:serviceaccount:kube-sentinel:kube-sentinel",
    });
  });

  it('reports a review that could not be made beside the verbs that were denied', async () => {
    const results = await checkPermissions(
      ruleSet(),
      'argo',
      probe({ 'list argo': false, 'watch argo': { error: 'connect ECONNREFUSED 127.0.0.1:6443' } }),
    );
    const failed = results.filter((result) => !result.ok);
    assert.equal(failed.length, 1);
    assert.match(
      failed[0]?.problem ?? '',
      /^the receiver may not list workflows in argo: .*; access review of watch failed: connect ECONNREFUSED/,
    );
    assert.match(
      failed[0]?.fix ?? '',
      /verify: for verb in list watch; do kubectl auth can-i \$verb workflows.argoproj.io -n argo --as=system:serviceaccount:<namespace>:<kube-sentinel service account>; done$/,
    );
  });

  it('keeps the create finding apart: a denied create does not fail the watch finding', async () => {
    const results = await checkPermissions(ruleSet(), 'argo', probe({ 'create argo': false }), IDENTITY);
    assert.deepEqual(
      results.filter((result) => !result.ok).map((result) => result.what),
      ['create workflows.argoproj.io in namespace argo (rules: crashloop)'],
    );
  });
});

const NAMESPACED_RULES = `
excluded_namespaces: [kube-system]
rules:
  - name: shop-crashloop
    match: {pattern: "CrashLoopBackOff", namespaces: [shop, cart]}
    priority: P3
    remediation: {action: trigger-argo-workflow, params: {workflow_template: diagnose-pod}}
  - name: cart-oom
    match: {pattern: "OOMKilled", namespaces: [cart, kube-system]}
    priority: P2
    remediation: {action: trigger-argo-workflow, params: {workflow_template: diagnose-memory}}
  - name: off
    enabled: false
    match: {pattern: "never"}
    priority: P4
    remediation: {action: trigger-argo-workflow, params: {workflow_template: diagnose-pod}}
`;

describe('check of the opt-out reads (SPEC §11)', () => {
  it('asks whether it may get Namespaces and Deployments, StatefulSets and DaemonSets in every namespace', async () => {
    const fake = probe();
    const results = await checkOptOutReads(ruleSet(), fake, IDENTITY);
    assert.deepEqual(fake.asked.sort(), [
      'get daemonsets.apps *',
      'get deployments.apps *',
      'get namespaces *',
      'get statefulsets.apps *',
    ]);
    assert.deepEqual(results, [
      {
        ok: true,
        what: 'get namespaces, and deployments, statefulsets, daemonsets.apps in every namespace (opt-out annotations)',
      },
    ]);
  });

  it('asks per namespace when every enabled rule names its namespaces (the excluded ones left out)', async () => {
    const parsed = parseRulesText(NAMESPACED_RULES, 'rules.yaml');
    assert.deepEqual(parsed.errors, []);
    const fake = probe();
    const results = await checkOptOutReads(
      buildRuleSet(parsed.rules, parsed.excludedNamespaces, ['rules.yaml']),
      fake,
      IDENTITY,
    );
    assert.ok(fake.asked.includes('get namespaces/cart cart'), fake.asked.join(', '));
    assert.ok(fake.asked.includes('get deployments.apps shop'));
    assert.ok(!fake.asked.some((question) => question.includes('kube-system')));
    assert.deepEqual(
      results.map((result) => result.what),
      [
        'get namespace cart, and deployments, statefulsets, daemonsets.apps in namespace cart (opt-out annotations; rules: cart-oom, shop-crashloop)',
        'get namespace shop, and deployments, statefulsets, daemonsets.apps in namespace shop (opt-out annotations; rules: shop-crashloop)',
      ],
    );
  });

  it('fails on a denied read, naming it, why it is needed, the ClusterRole rules and the can-i command', async () => {
    const results = await checkOptOutReads(ruleSet(), probe({ 'get namespaces *': false }), IDENTITY);
    assert.deepEqual(results, [
      {
        ok: false,
        what: 'get namespaces, and deployments, statefulsets, daemonsets.apps in every namespace (opt-out annotations)',
        problem:
          'the receiver may not get namespaces: it reads the kube-sentinel.io/remediation annotation there, and an alert whose Namespace or workload it cannot read is decided retry (503)',
        fix: 'add to the receiver\'s ClusterRole the rules {apiGroups: [""], resources: [namespaces], verbs: [get, list, watch]} and {apiGroups: [apps], resources: [deployments, statefulsets, daemonsets], verbs: [get, list, watch]} (the chart\'s ClusterRole has them: upgrade the chart); verify: kubectl auth can-i get namespaces --as=system:serviceaccount:kube-sentinel:kube-sentinel',
      },
    ]);
  });

  it('reports a review that could not be made, with a can-i command for each read not known to be allowed', async () => {
    const results = await checkOptOutReads(
      ruleSet(),
      probe({ 'get statefulsets.apps *': false, 'get daemonsets.apps *': { error: 'connect ECONNREFUSED' } }),
    );
    assert.match(
      results[0]?.problem ?? '',
      /^the receiver may not get statefulsets.apps in every namespace: .*; access review of get daemonsets.apps failed: connect ECONNREFUSED$/,
    );
    assert.match(
      results[0]?.fix ?? '',
      /verify: kubectl auth can-i get statefulsets.apps --all-namespaces --as=[^;]+; kubectl auth can-i get daemonsets.apps --all-namespaces --as=[^;]+$/,
    );
  });
});
