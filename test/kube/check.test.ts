/**
 * `kube-sentinel check`'s access questions, against a hand-written ClusterProbe: which verbs on
 * workflows it asks about in which namespace, and what it prints when one is denied or cannot be
 * asked. test/acceptance/check.test.ts drives the same through the CLI and the fake API server.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ClusterProbe, checkPermissions, type WorkflowVerb } from '../../src/kube/check.js';
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

/** Answers every access review from a table, `VERB NAMESPACE` → answer (allowed when absent), and records the questions. */
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
