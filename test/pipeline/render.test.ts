import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Alert } from '../../src/alert.js';
import { keyHash, type Workflow } from '../../src/kube/workflow.js';
import { DEFAULT_IMAGE, DEFAULT_INLINE_ACTION, INLINE_SCRIPTS } from '../../src/pipeline/inline-actions.js';
import { type RenderResult, type RenderSettings, renderWorkflow } from '../../src/pipeline/render.js';
import { REMEDIATION_DEFAULTS } from '../../src/rules/parse.js';
import type { InlineAction, Rule, TriggerParams } from '../../src/rules/types.js';
import { INLINE_ACTIONS } from '../../src/rules/types.js';
import { validateArgoObject } from '../support/argo-schema.js';

const SETTINGS: RenderSettings = { workflowNamespace: 'argo' };
const NAME = 'kube-sentinel-crashloop-0123456789';
const KEY = 'crashloop:shop/checkout';

const TARGET_LABELS = {
  alertname: 'KubePodCrashLooping',
  namespace: 'shop',
  pod: 'checkout-7d9f8b6c5-x2x9k',
  container: 'app',
  severity: 'critical',
};

function alertWith(labels: Record<string, string> = TARGET_LABELS, annotations: Record<string, string> = {}): Alert {
  return { source: 'alertmanager', status: 'firing', labels, annotations, fingerprint: 'feedfacecafebeef' };
}

const TEMPLATE_PARAMS: Partial<TriggerParams> = { workflowTemplate: 'diagnose-pod' };
const INLINE_PARAMS: Partial<TriggerParams> = { workflowName: 'restart-pod' };

function ruleWith(params: Partial<TriggerParams> = TEMPLATE_PARAMS, name = 'crashloop'): Rule {
  return {
    name,
    priority: 'P2',
    enabled: true,
    onResolved: false,
    match: { pattern: 'CrashLoopBackOff', labels: [], namespaces: [], excludedNamespaces: [], fields: [] },
    remediation: {
      action: 'trigger-argo-workflow',
      params: { clusterScope: false, arguments: [], ...params },
      cooldownMs: 300_000,
      cooldownKey: null,
      ...REMEDIATION_DEFAULTS,
    },
    source: { file: 'rules/test.yaml', line: 1 },
  };
}

/** A template rule whose remediation differs from ruleWith's in OVERRIDES (cooldown, approval, …). */
function ruleWithRemediation(overrides: Partial<Rule['remediation']>): Rule {
  const rule = ruleWith();
  return { ...rule, remediation: { ...rule.remediation, ...overrides } };
}

function rendered(result: RenderResult): Workflow {
  if (!result.ok) assert.fail(`expected a Workflow, got the refusal: ${result.reason}`);
  return result.workflow;
}

function refusal(result: RenderResult): string {
  if (result.ok)
    assert.fail(
      `expected a refusal, got a Workflow with parameters ${JSON.stringify(result.workflow.spec.arguments.parameters)}`,
    );
  return result.reason;
}

function parameterMap(workflow: Workflow): Record<string, string> {
  return Object.fromEntries(workflow.spec.arguments.parameters.map(({ name, value }) => [name, value]));
}

function onlyTemplate(workflow: Workflow) {
  const templates = workflow.spec.templates ?? [];
  assert.equal(templates.length, 1);
  const [template] = templates;
  assert.ok(template);
  return template;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** What the API server would check beyond the CRD schema, plus the schema itself. */
function assertAcceptedByKubernetes(workflow: Workflow): void {
  assert.deepEqual(validateArgoObject(workflow), [], 'the Argo CRD schema refuses the Workflow');
  assert.ok(workflow.metadata.name.length <= 63, workflow.metadata.name);
  assert.match(workflow.metadata.name, DNS1123_LABEL);
  for (const [key, value] of Object.entries(workflow.metadata.labels)) {
    assert.ok(value.length <= 63, `label ${key} is ${value.length} characters`);
    assert.match(value, LABEL_VALUE, `label ${key}`);
  }
  // JSON is what reaches the API server: nothing may be lost on the way (no undefined, no functions).
  assert.deepEqual(JSON.parse(JSON.stringify(workflow)), workflow);
}

describe('renderWorkflow', () => {
  describe('for each trigger-argo-workflow param', () => {
    const cases: { name: string; rule: Rule; settings?: RenderSettings; expect: (workflow: Workflow) => void }[] = [
      {
        name: 'workflow_template references a namespaced WorkflowTemplate',
        rule: ruleWith({ workflowTemplate: 'diagnose-pod' }),
        expect: (workflow) => {
          assert.deepEqual(workflow.spec.workflowTemplateRef, { name: 'diagnose-pod' });
          assert.equal(workflow.spec.templates, undefined);
          assert.equal(workflow.spec.entrypoint, undefined);
          assert.equal(workflow.spec.podGC, undefined);
          assert.equal(workflow.spec.activeDeadlineSeconds, undefined);
        },
      },
      {
        name: 'cluster_scope references a ClusterWorkflowTemplate',
        rule: ruleWith({ workflowTemplate: 'diagnose-pod', clusterScope: true }),
        expect: (workflow) =>
          assert.deepEqual(workflow.spec.workflowTemplateRef, { name: 'diagnose-pod', clusterScope: true }),
      },
      {
        name: 'workflow_name builds an inline workflow with the default action',
        rule: ruleWith({ workflowName: 'restart-pod' }),
        expect: (workflow) => {
          assert.equal(workflow.spec.workflowTemplateRef, undefined);
          assert.equal(workflow.spec.entrypoint, 'main');
          const template = onlyTemplate(workflow);
          assert.equal(template.name, 'main');
          assert.equal(template.script.source, INLINE_SCRIPTS[DEFAULT_INLINE_ACTION]);
          assert.equal(template.script.image, DEFAULT_IMAGE);
          assert.deepEqual(template.script.command, ['/bin/sh']);
          assert.deepEqual(workflow.spec.podGC, { strategy: 'OnPodCompletion' });
          assert.equal(workflow.spec.activeDeadlineSeconds, 600);
        },
      },
      ...INLINE_ACTIONS.map((action: InlineAction) => ({
        name: `inline_action ${action} selects its default script`,
        rule: ruleWith({ workflowName: 'restart-pod', inlineAction: action }),
        expect: (workflow: Workflow) => assert.equal(onlyTemplate(workflow).script.source, INLINE_SCRIPTS[action]),
      })),
      {
        name: 'image replaces the default image',
        rule: ruleWith({ workflowName: 'restart-pod', image: 'registry.example.com/ops/kubectl:1.33.0' }),
        expect: (workflow) =>
          assert.equal(onlyTemplate(workflow).script.image, 'registry.example.com/ops/kubectl:1.33.0'),
      },
      {
        name: 'script replaces the default script',
        rule: ruleWith({ workflowName: 'restart-pod', inlineAction: 'restart', script: 'set -eu\necho "$POD"\n' }),
        expect: (workflow) => assert.equal(onlyTemplate(workflow).script.source, 'set -eu\necho "$POD"\n'),
      },
      {
        name: 'namespace places the Workflow outside the default namespace',
        rule: ruleWith({ workflowTemplate: 'diagnose-pod', namespace: 'remediation' }),
        expect: (workflow) => assert.equal(workflow.metadata.namespace, 'remediation'),
      },
      {
        name: 'without namespace the Workflow goes to the workflow namespace setting',
        rule: ruleWith({ workflowTemplate: 'diagnose-pod' }),
        settings: { workflowNamespace: 'ops' },
        expect: (workflow) => assert.equal(workflow.metadata.namespace, 'ops'),
      },
      {
        name: 'service_account sets the service account',
        rule: ruleWith({ workflowTemplate: 'diagnose-pod', serviceAccount: 'argo-workflow' }),
        expect: (workflow) => assert.equal(workflow.spec.serviceAccountName, 'argo-workflow'),
      },
      {
        name: 'service_account wins over the service account setting',
        rule: ruleWith({ workflowTemplate: 'diagnose-pod', serviceAccount: 'special' }),
        settings: { workflowNamespace: 'argo', workflowServiceAccount: 'argo-workflow' },
        expect: (workflow) => assert.equal(workflow.spec.serviceAccountName, 'special'),
      },
      {
        name: 'without service_account the service account setting applies',
        rule: ruleWith({ workflowTemplate: 'diagnose-pod' }),
        settings: { workflowNamespace: 'argo', workflowServiceAccount: 'argo-workflow' },
        expect: (workflow) => assert.equal(workflow.spec.serviceAccountName, 'argo-workflow'),
      },
      {
        name: 'without service_account or setting no service account is set',
        rule: ruleWith({ workflowTemplate: 'diagnose-pod' }),
        expect: (workflow) => assert.equal('serviceAccountName' in workflow.spec, false),
      },
      {
        name: 'arguments follow the built-in parameters',
        rule: ruleWith({ workflowTemplate: 'scale-and-monitor', arguments: [{ name: 'replicas', value: '5' }] }),
        expect: (workflow) => assert.equal(parameterMap(workflow).replicas, '5'),
      },
    ];
    for (const { name, rule, settings, expect } of cases) {
      it(name, () => {
        const workflow = rendered(renderWorkflow(alertWith(), rule, settings ?? SETTINGS, KEY, NAME));
        expect(workflow);
        assertAcceptedByKubernetes(workflow);
      });
    }
  });

  describe('metadata', () => {
    it('names the Workflow as asked and labels and annotates it', () => {
      const workflow = rendered(renderWorkflow(alertWith(), ruleWith(), SETTINGS, KEY, NAME));
      assert.deepEqual(workflow.metadata, {
        name: NAME,
        namespace: 'argo',
        labels: {
          'app.kubernetes.io/managed-by': 'kube-sentinel',
          'kube-sentinel.io/rule': 'crashloop',
          'kube-sentinel.io/priority': 'P2',
          'kube-sentinel.io/key-hash': keyHash(KEY),
        },
        annotations: {
          'kube-sentinel.io/alertname': 'KubePodCrashLooping',
          'kube-sentinel.io/fingerprint': 'feedfacecafebeef',
          'kube-sentinel.io/cooldown-key': KEY,
          'kube-sentinel.io/target': 'shop/checkout-7d9f8b6c5-x2x9k',
          'kube-sentinel.io/rule': 'crashloop',
          'kube-sentinel.io/workload': 'checkout',
        },
      });
      assert.equal(workflow.apiVersion, 'argoproj.io/v1alpha1');
      assert.equal(workflow.kind, 'Workflow');
    });

    it('labels the Workflow with the hash of its cooldown key, which differs between keys', () => {
      const hashOf = (key: string) =>
        rendered(renderWorkflow(alertWith(), ruleWith(), SETTINGS, key, NAME)).metadata.labels[
          'kube-sentinel.io/key-hash'
        ];
      assert.equal(hashOf(KEY), keyHash(KEY));
      assert.notEqual(hashOf('crashloop:shop/cart'), hashOf(KEY));
      // A key holds any character and can be 512 long; the label stays a valid label value.
      const long = rendered(
        renderWorkflow(alertWith(), ruleWith(), SETTINGS, `crashloop:${'a=b/c,'.repeat(80)}`, NAME),
      );
      assertAcceptedByKubernetes(long);
    });

    it('annotates the rule name as written, where the label had to cut it', () => {
      const workflow = rendered(
        renderWorkflow(alertWith(), ruleWith(TEMPLATE_PARAMS, 'Complex failure recovery!'), SETTINGS, KEY, NAME),
      );
      assert.equal(workflow.metadata.annotations['kube-sentinel.io/rule'], 'Complex failure recovery!');
      assert.equal(workflow.metadata.labels['kube-sentinel.io/rule'], 'Complex-failure-recovery');
    });

    const workloads: { labels: Record<string, string>; workload: string }[] = [
      { labels: { ...TARGET_LABELS, deployment: 'checkout-api' }, workload: 'checkout-api' },
      { labels: { namespace: 'shop', pod: 'db-0' }, workload: 'db' },
      { labels: { alertname: 'NodeDown', instance: 'node-1' }, workload: '' },
    ];
    for (const { labels, workload } of workloads) {
      it(`annotates the workload ${JSON.stringify(workload)} of labels ${JSON.stringify(labels)}`, () => {
        const workflow = rendered(renderWorkflow(alertWith(labels), ruleWith(), SETTINGS, KEY, NAME));
        assert.equal(workflow.metadata.annotations['kube-sentinel.io/workload'], workload);
      });
    }

    it('annotates the attempt when given, and leaves it out when not', () => {
      const third = rendered(renderWorkflow(alertWith(), ruleWith(), SETTINGS, KEY, NAME, 3));
      assert.equal(third.metadata.annotations['kube-sentinel.io/attempt'], '3');
      assertAcceptedByKubernetes(third);
      const unknown = rendered(renderWorkflow(alertWith(), ruleWith(), SETTINGS, KEY, NAME));
      assert.equal('kube-sentinel.io/attempt' in unknown.metadata.annotations, false);
    });

    it('annotates the runbook when the rule has one, and none otherwise', () => {
      const runbookUrl = 'https://runbooks.example.com/crashloop#checkout';
      const workflow = rendered(renderWorkflow(alertWith(), ruleWithRemediation({ runbookUrl }), SETTINGS, KEY, NAME));
      assert.equal(workflow.metadata.annotations['kube-sentinel.io/runbook-url'], runbookUrl);
      const without = rendered(renderWorkflow(alertWith(), ruleWith(), SETTINGS, KEY, NAME));
      assert.equal('kube-sentinel.io/runbook-url' in without.metadata.annotations, false);
    });

    const ruleNames = [
      { ruleName: 'Complex failure recovery!', label: 'Complex-failure-recovery' },
      {
        ruleName: `${'very-long-rule-name-'.repeat(5)}end`,
        label: 'very-long-rule-name-very-long-rule-name-very-long-rule-name-ver',
      },
      { ruleName: '-dashes-around-', label: 'dashes-around' },
    ];
    for (const { ruleName, label } of ruleNames) {
      it(`turns the rule name "${ruleName.slice(0, 30)}" into a valid label value`, () => {
        const workflow = rendered(
          renderWorkflow(alertWith(), ruleWith(TEMPLATE_PARAMS, ruleName), SETTINGS, KEY, NAME),
        );
        assert.equal(workflow.metadata.labels['kube-sentinel.io/rule'], label);
        assertAcceptedByKubernetes(workflow);
      });
    }

    it('sets the TTL strategy of SPEC §5 for an ordinary cooldown', () => {
      const workflow = rendered(renderWorkflow(alertWith(), ruleWith(), SETTINGS, KEY, NAME));
      assert.deepEqual(workflow.spec.ttlStrategy, {
        secondsAfterSuccess: 600,
        secondsAfterFailure: 86400,
        secondsAfterCompletion: 3600,
      });
    });

    // The cluster is the record of what was done: a Workflow is never deleted before its cooldown ends.
    const cooldowns: { cooldownMs: number; ttl: Workflow['spec']['ttlStrategy'] }[] = [
      {
        cooldownMs: 600_000,
        ttl: { secondsAfterSuccess: 600, secondsAfterFailure: 86400, secondsAfterCompletion: 3600 },
      },
      {
        cooldownMs: 601_500,
        ttl: { secondsAfterSuccess: 602, secondsAfterFailure: 86400, secondsAfterCompletion: 3600 },
      },
      {
        cooldownMs: 2 * 3600_000,
        ttl: { secondsAfterSuccess: 7200, secondsAfterFailure: 86400, secondsAfterCompletion: 7200 },
      },
      {
        cooldownMs: 2 * 86400_000,
        ttl: { secondsAfterSuccess: 172800, secondsAfterFailure: 172800, secondsAfterCompletion: 172800 },
      },
    ];
    for (const { cooldownMs, ttl } of cooldowns) {
      it(`keeps the Workflow at least as long as a cooldown of ${cooldownMs / 1000} s`, () => {
        const workflow = rendered(
          renderWorkflow(alertWith(), ruleWithRemediation({ cooldownMs }), SETTINGS, KEY, NAME),
        );
        assert.deepEqual(workflow.spec.ttlStrategy, ttl);
        assertAcceptedByKubernetes(workflow);
      });
    }

    it('is pure: the same inputs give equal Workflows', () => {
      const rule = ruleWith({
        workflowName: 'restart-pod',
        arguments: [{ name: 'reason', value: '{{ annotations.summary }}' }],
      });
      const alert = alertWith(TARGET_LABELS, { summary: 'crash looping' });
      assert.deepEqual(
        renderWorkflow(alert, rule, SETTINGS, KEY, NAME),
        renderWorkflow(alert, rule, SETTINGS, KEY, NAME),
      );
    });
  });

  describe('with approval: required', () => {
    const rule = ruleWithRemediation({ approval: 'required', approvalTimeoutMs: 1_800_500 });
    const template = rendered(renderWorkflow(alertWith(), rule, SETTINGS, KEY, NAME));
    const inline = rendered(
      renderWorkflow(
        alertWith(),
        {
          ...rule,
          remediation: { ...rule.remediation, params: { clusterScope: false, arguments: [], ...INLINE_PARAMS } },
        },
        SETTINGS,
        KEY,
        NAME,
      ),
    );

    it('creates the Workflow suspended, to wait for a person', () => {
      assert.equal(template.spec.suspend, true);
      assert.equal(inline.spec.suspend, true);
    });

    it('annotates the approval timeout in whole seconds, rounded up', () => {
      assert.equal(template.metadata.annotations['kube-sentinel.io/approval-timeout'], '1801');
    });

    it('passes the Argo CRD schema, template or inline', () => {
      assertAcceptedByKubernetes(template);
      assertAcceptedByKubernetes(inline);
    });

    it('is not suspended nor given an approval timeout without approval', () => {
      const ordinary = rendered(
        renderWorkflow(alertWith(), ruleWithRemediation({ approvalTimeoutMs: 60_000 }), SETTINGS, KEY, NAME),
      );
      assert.equal('suspend' in ordinary.spec, false);
      assert.equal('kube-sentinel.io/approval-timeout' in ordinary.metadata.annotations, false);
    });
  });

  describe('parameters', () => {
    it('lists namespace, pod, container, alertname, priority, rule, then the arguments in their order', () => {
      const rule = ruleWith({
        workflowTemplate: 'scale-and-monitor',
        arguments: [
          { name: 'replicas', value: '5' },
          { name: 'deployment', value: 'checkout' },
        ],
      });
      const workflow = rendered(renderWorkflow(alertWith(), rule, SETTINGS, KEY, NAME));
      assert.deepEqual(workflow.spec.arguments.parameters, [
        { name: 'namespace', value: 'shop' },
        { name: 'pod', value: 'checkout-7d9f8b6c5-x2x9k' },
        { name: 'container', value: 'app' },
        { name: 'alertname', value: 'KubePodCrashLooping' },
        { name: 'priority', value: 'P2' },
        { name: 'rule', value: 'crashloop' },
        { name: 'replicas', value: '5' },
        { name: 'deployment', value: 'checkout' },
      ]);
    });

    it('gives absent target labels empty strings', () => {
      const workflow = rendered(renderWorkflow(alertWith({ alertname: 'NodeDown' }), ruleWith(), SETTINGS, KEY, NAME));
      const parameters = parameterMap(workflow);
      assert.deepEqual([parameters.namespace, parameters.pod, parameters.container], ['', '', '']);
      assert.equal(workflow.metadata.annotations['kube-sentinel.io/target'], '/');
      assertAcceptedByKubernetes(workflow);
    });

    it('gives an alert without alertname an empty alertname', () => {
      const workflow = rendered(renderWorkflow(alertWith({ namespace: 'shop' }), ruleWith(), SETTINGS, KEY, NAME));
      assert.equal(parameterMap(workflow).alertname, '');
    });

    const substitutions: { name: string; template: string; value: string }[] = [
      { name: 'substitutes a label', template: '{{ labels.severity }}', value: 'critical' },
      { name: 'substitutes an annotation', template: '{{ annotations.summary }}', value: 'checkout keeps crashing' },
      { name: 'substitutes without spaces inside the braces', template: '{{labels.namespace}}', value: 'shop' },
      {
        name: 'substitutes several references in one value',
        template: '{{ labels.namespace }}/{{ labels.pod }} ({{ annotations.runbook_url }})',
        value: 'shop/checkout-7d9f8b6c5-x2x9k (https://runbooks.example.com/crashloop)',
      },
      { name: 'substitutes a missing label with an empty string', template: 'zone={{ labels.zone }}', value: 'zone=' },
      {
        name: 'substitutes a missing annotation with an empty string',
        template: '[{{ annotations.nothing }}]',
        value: '[]',
      },
      { name: 'does not read inherited properties as labels', template: '[{{ labels.constructor }}]', value: '[]' },
      {
        name: 'keeps text without references unchanged',
        template: 'plain value, $(not) `run`',
        value: 'plain value, $(not) `run`',
      },
      {
        name: 'passes shell syntax from a label through as data',
        template: '{{ annotations.description }}',
        value: 'db down; retry `now` $(id) | sh\nline two ü',
      },
    ];
    for (const { name, template, value } of substitutions) {
      it(name, () => {
        const alert = alertWith(TARGET_LABELS, {
          summary: 'checkout keeps crashing',
          runbook_url: 'https://runbooks.example.com/crashloop',
          description: 'db down; retry `now` $(id) | sh\nline two ü',
        });
        const rule = ruleWith({ workflowName: 'restart-pod', arguments: [{ name: 'detail', value: template }] });
        const workflow = rendered(renderWorkflow(alert, rule, SETTINGS, KEY, NAME));
        assert.equal(parameterMap(workflow).detail, value);
        assertAcceptedByKubernetes(workflow);
      });
    }

    it('accepts a substituted value of exactly 4096 characters', () => {
      const alert = alertWith(TARGET_LABELS, { description: 'x'.repeat(4096) });
      const rule = ruleWith({
        workflowTemplate: 'diagnose-pod',
        arguments: [{ name: 'detail', value: '{{ annotations.description }}' }],
      });
      assert.equal(parameterMap(rendered(renderWorkflow(alert, rule, SETTINGS, KEY, NAME))).detail?.length, 4096);
    });
  });

  describe('inline workflow', () => {
    const rule = ruleWith({
      workflowName: 'restart-pod',
      inlineAction: 'logs',
      arguments: [
        { name: 'replicas', value: '3' },
        { name: 'log-tail_lines', value: '{{ labels.severity }}' },
      ],
    });
    const workflow = rendered(renderWorkflow(alertWith(), rule, SETTINGS, KEY, NAME));
    const template = onlyTemplate(workflow);

    it('hands every parameter to the script as an environment variable holding its Argo reference', () => {
      assert.deepEqual(template.script.env, [
        { name: 'HOME', value: '/tmp' },
        { name: 'NAMESPACE', value: '{{workflow.parameters.namespace}}' },
        { name: 'POD', value: '{{workflow.parameters.pod}}' },
        { name: 'CONTAINER', value: '{{workflow.parameters.container}}' },
        { name: 'ALERTNAME', value: '{{workflow.parameters.alertname}}' },
        { name: 'PRIORITY', value: '{{workflow.parameters.priority}}' },
        { name: 'RULE', value: '{{workflow.parameters.rule}}' },
        { name: 'REPLICAS', value: '{{workflow.parameters.replicas}}' },
        { name: 'LOG_TAIL_LINES', value: '{{workflow.parameters.log-tail_lines}}' },
      ]);
    });

    it('gives kubectl a writable HOME on an emptyDir, the root filesystem being read-only', () => {
      assert.deepEqual(template.script.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }]);
      assert.deepEqual(workflow.spec.volumes, [{ name: 'tmp', emptyDir: {} }]);
      assert.equal(template.script.securityContext.readOnlyRootFilesystem, true);
    });

    it('never pastes a parameter value or reference into the script text', () => {
      assert.doesNotMatch(template.script.source, /\{\{/);
      for (const { value } of workflow.spec.arguments.parameters) {
        if (value.length > 2) assert.ok(!template.script.source.includes(value), `script contains ${value}`);
      }
    });

    it('bounds the container and runs it without privileges', () => {
      assert.deepEqual(template.script.resources, {
        requests: { cpu: '50m', memory: '64Mi' },
        limits: { cpu: '500m', memory: '256Mi' },
      });
      assert.deepEqual(template.script.securityContext, {
        runAsNonRoot: true,
        runAsUser: 65534,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
    });

    it('passes the Argo CRD schema', () => {
      assertAcceptedByKubernetes(workflow);
    });

    it('prefixes an environment variable that would start with a digit', () => {
      const digits = ruleWith({ workflowName: 'restart-pod', arguments: [{ name: '2fa', value: 'x' }] });
      const env = onlyTemplate(rendered(renderWorkflow(alertWith(), digits, SETTINGS, KEY, NAME))).script.env;
      assert.deepEqual(env.at(-1), { name: '_2FA', value: '{{workflow.parameters.2fa}}' });
    });
  });

  describe('with hostile target labels', () => {
    const hostile: { what: string; value: string }[] = [
      { what: 'a command separator and pipe', value: 'a;curl x|sh' },
      { what: 'a command substitution', value: '$(id)' },
      { what: 'an Argo expression', value: '{{workflow.name}}' },
      { what: 'backticks', value: '`id`' },
      { what: 'a newline', value: 'web\nkubectl delete ns prod' },
      { what: 'unicode', value: 'wéb-ü' },
      { what: 'upper case', value: 'Checkout' },
      { what: 'a space', value: 'web 0' },
      { what: 'a leading dash that kubectl would read as a flag', value: '-n' },
      { what: 'a trailing dash', value: 'web-' },
      { what: 'a slash', value: '../etc' },
      { what: '300 characters', value: 'a'.repeat(300) },
    ];
    for (const label of ['namespace', 'pod', 'container'] as const) {
      for (const { what, value } of hostile) {
        it(`refuses a ${label} label with ${what}, naming the label`, () => {
          const reason = refusal(
            renderWorkflow(
              alertWith({ ...TARGET_LABELS, [label]: value }),
              ruleWith(INLINE_PARAMS),
              SETTINGS,
              KEY,
              NAME,
            ),
          );
          assert.match(reason, new RegExp(`^label "${label}" is not a valid Kubernetes name`));
        });
      }
    }

    it('quotes the offending value in the reason', () => {
      const reason = refusal(
        renderWorkflow(alertWith({ ...TARGET_LABELS, pod: 'a;curl x|sh' }), ruleWith(), SETTINGS, KEY, NAME),
      );
      assert.equal(reason, 'label "pod" is not a valid Kubernetes name: "a;curl x|sh"');
    });

    it('says how long a name was that is too long, and shortens it in the reason', () => {
      const reason = refusal(
        renderWorkflow(alertWith({ ...TARGET_LABELS, pod: 'a'.repeat(300) }), ruleWith(), SETTINGS, KEY, NAME),
      );
      assert.match(reason, /300 characters, at most 253/);
      assert.ok(reason.length < 200, reason);
    });

    const lengthLimits: { label: 'namespace' | 'pod' | 'container'; longest: number }[] = [
      { label: 'namespace', longest: 63 },
      { label: 'pod', longest: 253 },
      { label: 'container', longest: 63 },
    ];
    for (const { label, longest } of lengthLimits) {
      it(`accepts a ${longest}-character ${label} and refuses one character more`, () => {
        const accepted = renderWorkflow(
          alertWith({ ...TARGET_LABELS, [label]: 'a'.repeat(longest) }),
          ruleWith(),
          SETTINGS,
          KEY,
          NAME,
        );
        assert.equal(parameterMap(rendered(accepted))[label], 'a'.repeat(longest));
        const refused = renderWorkflow(
          alertWith({ ...TARGET_LABELS, [label]: 'a'.repeat(longest + 1) }),
          ruleWith(),
          SETTINGS,
          KEY,
          NAME,
        );
        assert.match(refusal(refused), new RegExp(`label "${label}"`));
      });
    }

    it('accepts a pod name with dots, which a DNS-1123 subdomain allows', () => {
      const workflow = rendered(
        renderWorkflow(alertWith({ ...TARGET_LABELS, pod: 'web.v2-0' }), ruleWith(), SETTINGS, KEY, NAME),
      );
      assert.equal(parameterMap(workflow).pod, 'web.v2-0');
    });

    it('refuses a namespace with dots, which a DNS-1123 label does not allow', () => {
      assert.match(
        refusal(
          renderWorkflow(alertWith({ ...TARGET_LABELS, namespace: 'shop.prod' }), ruleWith(), SETTINGS, KEY, NAME),
        ),
        /label "namespace"/,
      );
    });
  });

  describe('with hostile values in other parameters', () => {
    const cases: { name: string; alert: Alert; rule: Rule; reason: RegExp }[] = [
      {
        name: 'refuses an alertname holding an Argo expression',
        alert: alertWith({ ...TARGET_LABELS, alertname: 'X{{workflow.name}}' }),
        rule: ruleWith(),
        reason: /^parameter "alertname" contains "\{\{"/,
      },
      {
        name: 'refuses a label substituted into an argument that holds an Argo expression',
        alert: alertWith({ ...TARGET_LABELS, severity: '{{workflow.parameters.pod}}' }),
        rule: ruleWith({
          workflowTemplate: 'diagnose-pod',
          arguments: [{ name: 'level', value: '{{ labels.severity }}' }],
        }),
        reason: /^label "severity" \(argument "level"\) contains "\{\{"/,
      },
      {
        name: 'refuses an annotation substituted into an argument that holds an Argo expression',
        alert: alertWith(TARGET_LABELS, { description: 'oops {{=sprig.env("X")}}' }),
        rule: ruleWith({
          workflowName: 'restart-pod',
          arguments: [{ name: 'why', value: '{{ annotations.description }}' }],
        }),
        reason: /^annotation "description" \(argument "why"\) contains "\{\{"/,
      },
      {
        name: 'does not expand a reference that a substituted value carries',
        alert: alertWith({ ...TARGET_LABELS, severity: '{{ labels.namespace }}' }),
        rule: ruleWith({
          workflowTemplate: 'diagnose-pod',
          arguments: [{ name: 'level', value: '{{ labels.severity }}' }],
        }),
        reason: /^label "severity" \(argument "level"\) contains "\{\{"/,
      },
      {
        name: 'refuses braces that two substitutions form together',
        alert: alertWith({ ...TARGET_LABELS, left: 'a{', right: '{b' }),
        rule: ruleWith({
          workflowTemplate: 'diagnose-pod',
          arguments: [{ name: 'joined', value: '{{ labels.left }}{{ labels.right }}' }],
        }),
        reason: /^argument "joined" contains "\{\{"/,
      },
      {
        name: 'refuses an argument whose rule text holds a reference other than labels and annotations',
        alert: alertWith(),
        rule: ruleWith({ workflowTemplate: 'diagnose-pod', arguments: [{ name: 'name', value: '{{workflow.name}}' }] }),
        reason: /^argument "name" contains "\{\{"/,
      },
      {
        name: 'refuses a substituted value over 4096 characters, naming the annotation',
        alert: alertWith(TARGET_LABELS, { description: 'x'.repeat(4097) }),
        rule: ruleWith({
          workflowTemplate: 'diagnose-pod',
          arguments: [{ name: 'detail', value: '{{ annotations.description }}' }],
        }),
        reason: /^annotation "description" \(argument "detail"\) is 4097 characters long/,
      },
      {
        name: 'refuses an argument that grows over 4096 characters by substitution',
        alert: alertWith({ ...TARGET_LABELS, chunk: 'y'.repeat(3000) }),
        rule: ruleWith({
          workflowTemplate: 'diagnose-pod',
          arguments: [{ name: 'detail', value: '{{ labels.chunk }}{{ labels.chunk }}' }],
        }),
        reason: /^argument "detail" is 6000 characters long/,
      },
    ];
    for (const { name, alert, rule, reason } of cases) {
      it(name, () => {
        assert.match(refusal(renderWorkflow(alert, rule, SETTINGS, KEY, NAME)), reason);
      });
    }
  });
});

describe('INLINE_SCRIPTS', () => {
  it('has a script for every inline action, and diagnose is the default', () => {
    assert.deepEqual(Object.keys(INLINE_SCRIPTS).sort(), [...INLINE_ACTIONS].sort());
    assert.equal(DEFAULT_INLINE_ACTION, 'diagnose');
  });

  it('pins the default image to a version', () => {
    assert.match(DEFAULT_IMAGE, /^[^:]+:\d+\.\d+\.\d+$/);
    assert.doesNotMatch(DEFAULT_IMAGE, /:latest$/);
  });

  for (const action of INLINE_ACTIONS) {
    it(`${action} starts with set -eu, holds no Argo reference and reads the alert only from quoted variables`, () => {
      const script = INLINE_SCRIPTS[action];
      assert.ok(script.startsWith('set -eu\n'), script);
      assert.doesNotMatch(script, /\{\{/);
      // Every expansion of an alert variable sits inside double quotes on its line.
      for (const line of script.split('\n')) {
        const unquoted = line.replace(/"(?:[^"\\]|\\.)*"/g, '""');
        assert.doesNotMatch(unquoted, /\$\{?(NAMESPACE|POD|CONTAINER)\b/, `unquoted expansion in: ${line}`);
      }
    });
  }

  describe('run by sh against a fake kubectl', () => {
    let workdir = '';
    let kubectlLog = '';
    const RECORD_END = '\u001e';

    before(() => {
      workdir = mkdtempSync(join(tmpdir(), 'kube-sentinel-render-'));
      kubectlLog = join(workdir, 'kubectl.log');
      // Records each call's arguments NUL-separated, so that the test sees argument boundaries,
      // and what `create -f -` reads from stdin. `top` and `--previous` fail, as they do without
      // metrics-server or a previous container; `create` answers as CREATE_EXIT and CREATE_STDERR say.
      const fake = `#!/bin/sh
for arg in "$@"; do printf '%s\\0' "$arg" >> "$KUBECTL_LOG"; done
printf '${RECORD_END}' >> "$KUBECTL_LOG"
if [ "$1" = get ] && [ "$2" = pod ]; then
  printf '%s' "$GET_STDOUT"
  printf '%s' "$GET_STDERR" >&2
  exit "$GET_EXIT"
fi
if [ "$1" = create ]; then
  cat > "$KUBECTL_LOG.stdin"
  printf '%s' "$CREATE_STDERR" >&2
  exit "$CREATE_EXIT"
fi
[ "$1" = top ] && exit 1
for arg in "$@"; do [ "$arg" = --previous ] && exit 1; done
exit 0
`;
      writeFileSync(join(workdir, 'kubectl'), fake);
      chmodSync(join(workdir, 'kubectl'), 0o755);
    });

    after(() => {
      rmSync(workdir, { recursive: true, force: true });
    });

    /** What `kubectl get pod -o jsonpath=…` prints of the pod's controller: a ReplicaSet. */
    const OWNED = { exit: 0, stdout: 'ReplicaSet/checkout-7d9f8b6c5', stderr: '' };
    const OWNER_JSONPATH = '{range .metadata.ownerReferences[?(@.controller==true)]}{.kind}/{.name}{end}';

    /** The kubelet's termination message file, where the script may explain its failure to Argo. */
    const terminationLog = () => join(workdir, 'termination-log');

    function run(
      action: InlineAction,
      env: { NAMESPACE: string; POD: string; CONTAINER: string },
      create: { exit: number; stderr: string } = { exit: 0, stderr: '' },
      get: { exit: number; stdout: string; stderr: string } = OWNED,
    ) {
      rmSync(kubectlLog, { force: true });
      rmSync(`${kubectlLog}.stdin`, { force: true });
      writeFileSync(terminationLog(), '');
      const result = spawnSync(
        'sh',
        ['-c', INLINE_SCRIPTS[action].replaceAll('/dev/termination-log', terminationLog())],
        {
          cwd: workdir,
          encoding: 'utf8',
          env: {
            PATH: `${workdir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
            KUBECTL_LOG: kubectlLog,
            CREATE_EXIT: String(create.exit),
            CREATE_STDERR: create.stderr,
            GET_EXIT: String(get.exit),
            GET_STDOUT: get.stdout,
            GET_STDERR: get.stderr,
            ...env,
          },
        },
      );
      const calls = existsSync(kubectlLog)
        ? readFileSync(kubectlLog, 'utf8')
            .split(RECORD_END)
            .filter((record) => record !== '')
            .map((record) => record.split('\0').slice(0, -1))
        : [];
      const stdin = existsSync(`${kubectlLog}.stdin`) ? readFileSync(`${kubectlLog}.stdin`, 'utf8') : undefined;
      return {
        status: result.status,
        calls,
        stdin,
        stdout: result.stdout,
        stderr: result.stderr,
        terminationMessage: readFileSync(terminationLog(), 'utf8'),
      };
    }

    const target = { NAMESPACE: 'shop', POD: 'checkout-7d9f8b6c5-x2x9k', CONTAINER: 'app' };
    const expected: Record<InlineAction, string[][]> = {
      restart: [
        ['get', 'pod', 'checkout-7d9f8b6c5-x2x9k', '-n', 'shop', '-o', `jsonpath=${OWNER_JSONPATH}`],
        ['create', '--raw', '/api/v1/namespaces/shop/pods/checkout-7d9f8b6c5-x2x9k/eviction', '-f', '-'],
      ],
      describe: [['describe', 'pod', 'checkout-7d9f8b6c5-x2x9k', '-n', 'shop']],
      logs: [
        ['logs', 'checkout-7d9f8b6c5-x2x9k', '-n', 'shop', '-c', 'app', '--tail=500'],
        ['logs', 'checkout-7d9f8b6c5-x2x9k', '-n', 'shop', '-c', 'app', '--tail=500', '--previous'],
      ],
      events: [
        [
          'get',
          'events',
          '-n',
          'shop',
          '--field-selector',
          'involvedObject.name=checkout-7d9f8b6c5-x2x9k',
          '--sort-by=.lastTimestamp',
        ],
      ],
      diagnose: [
        ['describe', 'pod', 'checkout-7d9f8b6c5-x2x9k', '-n', 'shop'],
        ['logs', 'checkout-7d9f8b6c5-x2x9k', '-n', 'shop', '-c', 'app', '--tail=500'],
        ['logs', 'checkout-7d9f8b6c5-x2x9k', '-n', 'shop', '-c', 'app', '--tail=500', '--previous'],
        [
          'get',
          'events',
          '-n',
          'shop',
          '--field-selector',
          'involvedObject.name=checkout-7d9f8b6c5-x2x9k',
          '--sort-by=.lastTimestamp',
        ],
        ['top', 'pod', 'checkout-7d9f8b6c5-x2x9k', '-n', 'shop', '--containers'],
      ],
    };
    for (const action of INLINE_ACTIONS) {
      it(`${action} runs the expected kubectl commands and succeeds when optional ones fail`, () => {
        const { status, calls, stderr } = run(action, target);
        assert.equal(status, 0, stderr);
        assert.deepEqual(calls, expected[action]);
      });
    }

    it('logs every container when the alert names none', () => {
      const { status, calls } = run('logs', { ...target, CONTAINER: '' });
      assert.equal(status, 0);
      assert.deepEqual(calls[0], [
        'logs',
        'checkout-7d9f8b6c5-x2x9k',
        '-n',
        'shop',
        '--all-containers=true',
        '--tail=500',
      ]);
    });

    for (const action of INLINE_ACTIONS) {
      it(`${action} fails without calling kubectl when the pod is unknown`, () => {
        const { status, calls } = run(action, { ...target, POD: '' });
        assert.notEqual(status, 0);
        assert.deepEqual(calls, []);
      });
    }

    it('passes a hostile value to kubectl as one argument and never runs it', () => {
      const hostileContainer = 'x; touch pwned $(touch pwned2) `touch pwned3`\n*';
      const { calls } = run('logs', { ...target, CONTAINER: hostileContainer });
      assert.deepEqual(calls[0], [
        'logs',
        'checkout-7d9f8b6c5-x2x9k',
        '-n',
        'shop',
        '-c',
        hostileContainer,
        '--tail=500',
      ]);
      for (const file of ['pwned', 'pwned2', 'pwned3'])
        assert.equal(existsSync(join(workdir, file)), false, `${file} was created`);
    });

    describe('restart', () => {
      const EVICTION_URL = '/api/v1/namespaces/shop/pods/checkout-7d9f8b6c5-x2x9k/eviction';
      const GET_OWNER = ['get', 'pod', 'checkout-7d9f8b6c5-x2x9k', '-n', 'shop', '-o', `jsonpath=${OWNER_JSONPATH}`];
      const PDB_REFUSAL =
        "Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget.\n";

      it('evicts the pod through the Eviction API with a policy/v1 Eviction of that pod, and deletes nothing', () => {
        const { status, calls, stdin, stderr } = run('restart', target);
        assert.equal(status, 0, stderr);
        assert.deepEqual(calls, [GET_OWNER, ['create', '--raw', EVICTION_URL, '-f', '-']]);
        assert.deepEqual(JSON.parse(stdin ?? ''), {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name: 'checkout-7d9f8b6c5-x2x9k', namespace: 'shop' },
        });
      });

      it("fails with the API server's message when a PodDisruptionBudget refuses the eviction, and lists the budgets", () => {
        const { status, calls, stderr, terminationMessage } = run('restart', target, { exit: 1, stderr: PDB_REFUSAL });
        assert.equal(status, 1);
        assert.match(
          stderr,
          /eviction of pod shop\/checkout-7d9f8b6c5-x2x9k failed: Error from server \(TooManyRequests\): Cannot evict pod as it would violate the pod's disruption budget\./,
        );
        assert.match(
          terminationMessage,
          /^eviction of pod shop\/checkout-7d9f8b6c5-x2x9k failed: Error from server \(TooManyRequests\): Cannot evict pod/,
        );
        assert.deepEqual(calls, [
          GET_OWNER,
          ['create', '--raw', EVICTION_URL, '-f', '-'],
          ['get', 'poddisruptionbudgets', '-n', 'shop'],
        ]);
      });

      it('fails on any other error of the API server, with its message', () => {
        const forbidden =
          'Error from server (Forbidden): pods "checkout-7d9f8b6c5-x2x9k" is forbidden: User "system:serviceaccount:argo:argo-workflow" cannot create resource "pods/eviction"\n';
        const { status, stderr, terminationMessage } = run('restart', target, { exit: 1, stderr: forbidden });
        assert.equal(status, 1);
        assert.match(stderr, /failed: Error from server \(Forbidden\)/);
        assert.match(terminationMessage, /cannot create resource "pods\/eviction"/);
      });

      it('succeeds without restarting anything when the pod is already gone', () => {
        const notFound = 'Error from server (NotFound): pods "checkout-7d9f8b6c5-x2x9k" not found\n';
        const { status, calls, stdout, terminationMessage } = run('restart', target, { exit: 1, stderr: notFound });
        assert.equal(status, 0);
        assert.match(stdout, /pod shop\/checkout-7d9f8b6c5-x2x9k is already gone: nothing to restart/);
        assert.equal(terminationMessage, '');
        assert.equal(calls.length, 2);
        const gone = run('restart', target, undefined, { exit: 1, stdout: '', stderr: notFound });
        assert.equal(gone.status, 0, 'gone before it was read');
        assert.match(gone.stdout, /is already gone: nothing to restart/);
        assert.deepEqual(gone.calls, [GET_OWNER]);
      });

      const unowned: [string, string, RegExp][] = [
        [
          'a pod no controller owns (nothing would recreate it)',
          '',
          /no controller owns it, so nothing would recreate it/,
        ],
        ['a static pod (its mirror comes back unchanged)', 'Node/worker-1', /a static pod \(Node\/worker-1\)/],
      ];
      for (const [name, owner, says] of unowned) {
        it(`refuses to evict ${name}, saying why`, () => {
          const { status, calls, stderr, terminationMessage } = run('restart', target, undefined, {
            ...OWNED,
            stdout: owner,
          });
          assert.equal(status, 1);
          assert.match(stderr, says);
          assert.match(terminationMessage, says);
          assert.deepEqual(calls, [GET_OWNER], 'no eviction');
        });
      }

      it("fails, with the API server's message, when the pod cannot be read", () => {
        const forbidden = 'Error from server (Forbidden): pods "checkout-7d9f8b6c5-x2x9k" is forbidden\n';
        const { status, calls, terminationMessage } = run('restart', target, undefined, {
          exit: 1,
          stdout: '',
          stderr: forbidden,
        });
        assert.equal(status, 1);
        assert.match(
          terminationMessage,
          /cannot read pod shop\/checkout-7d9f8b6c5-x2x9k: Error from server \(Forbidden\)/,
        );
        assert.deepEqual(calls, [GET_OWNER]);
      });

      it('fails when what is not found is another pod or the API path itself', () => {
        for (const notFound of [
          'Error from server (NotFound): pods "checkout-7d9f8b6c5-aaaaa" not found\n',
          'Error from server (NotFound): the server could not find the requested resource\n',
        ]) {
          const { status } = run('restart', target, { exit: 1, stderr: notFound });
          assert.equal(status, 1, notFound);
        }
      });

      const unsafe: [string, Partial<typeof target>][] = [
        ['a pod name with a slash', { POD: '../../../apis/apps/v1/namespaces/shop/deployments/checkout' }],
        ['a pod name of dots', { POD: '..' }],
        ['a pod name with a query', { POD: 'checkout?dryRun=All' }],
        ['a pod name with shell in it', { POD: 'x; touch pwned $(touch pwned2) `touch pwned3`' }],
        ['an upper-case namespace', { NAMESPACE: 'Shop' }],
        ['a namespace with a dot', { NAMESPACE: 'shop.prod' }],
      ];
      for (const [name, change] of unsafe) {
        it(`refuses ${name} before calling kubectl, since the names go into the request path`, () => {
          const { status, calls, stderr } = run('restart', { ...target, ...change });
          assert.equal(status, 2);
          assert.match(stderr, /refusing to evict: (namespace|pod) must be a DNS-1123/);
          assert.deepEqual(calls, []);
          for (const file of ['pwned', 'pwned2', 'pwned3'])
            assert.equal(existsSync(join(workdir, file)), false, `${file} was created`);
        });
      }
    });
  });
});
