/**
 * The chart's PrometheusRule, evaluated by Prometheus' own promtool: every rule it renders must
 * load in Prometheus (PromQL and annotation templates), and the closed-loop alerts (SPEC §9) must
 * fire on the series the receiver exports — the first failure of a rule on a pod included, whose
 * series is born at 1 and which increase() alone never sees.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { type KubeObject, RELEASE_NAME, renderChart } from '../support/helm.js';

const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

interface Rule {
  alert?: string;
  expr: string;
}

interface Group {
  name: string;
  rules: Rule[];
}

async function ruleGroups(set: string[] = []): Promise<Group[]> {
  const objects: KubeObject[] = await renderChart(['prometheusRule.enabled=true', ...set]);
  const rule = objects.find(
    (o) => o.kind === 'PrometheusRule' && (o.metadata as { name?: string }).name === RELEASE_NAME,
  ) as { spec: { groups: Group[] } } | undefined;
  assert.ok(rule, 'no PrometheusRule rendered');
  return rule.spec.groups;
}

function promtool(args: string[], cwd: string): { status: number | null; output: string } {
  const result = spawnSync(PROMTOOL, args, { cwd, encoding: 'utf8' });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT')
    assert.fail(
      `${PROMTOOL} not found: install Debian's prometheus package (scripts/test-deps.sh does), or set PROMTOOL`,
    );
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** The expression of ALERT, as rendered. */
function exprOf(groups: Group[], alert: string): string {
  const rule = groups.flatMap((g) => g.rules).find((r) => r.alert === alert);
  assert.ok(rule, `no ${alert}`);
  return rule.expr;
}

const SCRAPED = 'job="kube-sentinel",namespace="kube-sentinel"';

/** `values` of a series: nothing for `absentMinutes`, then VALUE for `minutes` samples (promtool's expanding notation). */
function bornAt(absentMinutes: number, value: number, minutes: number): string {
  return `${absentMinutes > 0 ? `_x${absentMinutes} ` : ''}${value}x${minutes}`;
}

describe('the PrometheusRule in Prometheus', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ks-promtool-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const valueSets: ReadonlyArray<string[]> = [
    [],
    ['escalation.urls={http://alertmanager:9093}'],
    ['knative.enabled=true', 'knative.minScale=1'],
  ];
  for (const set of valueSets) {
    it(`loads every rule, expressions and annotation templates, with ${set.join(', ') || 'default values'}`, async () => {
      writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: await ruleGroups(set) }));
      const result = promtool(['check', 'rules', 'rules.yaml'], dir);
      assert.equal(result.status, 0, result.output);
      assert.match(result.output, /SUCCESS: \d+ rules found/);
    });
  }

  /** Runs one promtool unit test of EXPR over SERIES: at each minute, the samples expected. */
  function evaluate(
    expr: string,
    series: Array<{ series: string; values: string }>,
    expectations: Array<{ minute: number; samples: Array<{ labels: string; value: number }> }>,
  ): void {
    writeFileSync(join(dir, 'empty.yaml'), 'groups: []\n');
    const unitTest = {
      rule_files: ['empty.yaml'],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: series,
          promql_expr_test: expectations.map(({ minute, samples }) => ({
            expr,
            eval_time: `${minute}m`,
            exp_samples: samples,
          })),
        },
      ],
    };
    writeFileSync(join(dir, 'test.yaml'), stringify(unitTest));
    const result = promtool(['test', 'rules', 'test.yaml'], dir);
    assert.equal(result.status, 0, `${expr}\n${result.output}`);
  }

  it('KubeSentinelRemediationsFailing fires per rule on a failed or unknown remediation, the first on a pod included, for an hour', async () => {
    const expr = exprOf(await ruleGroups(), 'KubeSentinelRemediationsFailing');
    const series = (pod: string, rule: string, state: string) =>
      `kube_sentinel_remediations_total{${SCRAPED},pod="${pod}",rule="${rule}",state="${state}"}`;
    evaluate(
      expr,
      [
        // The first failure of rule a on pod p1, at minute 10: the series is born at 1.
        { series: series('p1', 'a', 'failed'), values: bornAt(10, 1, 150) },
        { series: series('p1', 'a', 'succeeded'), values: '1+1x160' },
        { series: series('p1', 'a', 'cancelled'), values: '0+1x160' },
        // Rule b's counter on p2 has been there for long; a Workflow deleted before it completed at minute 100.
        { series: series('p2', 'b', 'unknown'), values: '0x99 1x60' },
      ],
      [
        { minute: 5, samples: [] },
        { minute: 15, samples: [{ labels: '{rule="a"}', value: 1 }] },
        { minute: 69, samples: [{ labels: '{rule="a"}', value: 1 }] },
        { minute: 80, samples: [] },
        { minute: 105, samples: [{ labels: '{rule="b"}', value: 1 }] },
        { minute: 150, samples: [{ labels: '{rule="b"}', value: 1 }] },
        { minute: 161, samples: [] },
      ],
    );
  });

  it('KubeSentinelAttemptBudgetSpent fires per rule on escalated decisions, and on no other outcome', async () => {
    const expr = exprOf(await ruleGroups(), 'KubeSentinelAttemptBudgetSpent');
    const series = (pod: string, rule: string, outcome: string) =>
      `kube_sentinel_decisions_total{${SCRAPED},pod="${pod}",rule="${rule}",outcome="${outcome}"}`;
    evaluate(
      expr,
      [
        { series: series('p1', 'oom', 'escalated'), values: bornAt(30, 2, 30) },
        { series: series('p1', 'oom', 'submitted'), values: '1+1x60' },
        { series: series('p2', 'oom', 'cooldown'), values: bornAt(30, 7, 30) },
      ],
      [
        { minute: 20, samples: [] },
        { minute: 45, samples: [{ labels: '{rule="oom"}', value: 2 }] },
      ],
    );
  });

  it('KubeSentinelWorkflowWatchFailing selects each pod and namespace whose watch is failing, and none once it recovers', async () => {
    const expr = exprOf(await ruleGroups(), 'KubeSentinelWorkflowWatchFailing');
    const series = (pod: string, namespace: string) =>
      `kube_sentinel_workflow_watch_healthy{${SCRAPED},pod="${pod}",workflow_namespace="${namespace}"}`;
    evaluate(
      expr,
      [
        { series: series('p1', 'argo'), values: '1x9 0x30 1x20' },
        { series: series('p2', 'argo'), values: '1x9 0x3 1x47' },
        { series: series('p1', 'ops'), values: '1x60' },
      ],
      [
        { minute: 20, samples: [{ labels: '{pod="p1",workflow_namespace="argo"}', value: 0 }] },
        {
          minute: 11,
          samples: [
            { labels: '{pod="p1",workflow_namespace="argo"}', value: 0 },
            { labels: '{pod="p2",workflow_namespace="argo"}', value: 0 },
          ],
        },
        { minute: 45, samples: [] },
      ],
    );
  });

  it('KubeSentinelEscalationsUndelivered fires on an escalation given up, not on one sent or only logged', async () => {
    const expr = exprOf(
      await ruleGroups(['escalation.urls={http://alertmanager:9093}']),
      'KubeSentinelEscalationsUndelivered',
    );
    const series = (alertname: string, result: string) =>
      `kube_sentinel_escalations_total{${SCRAPED},pod="p1",alertname="${alertname}",result="${result}"}`;
    evaluate(
      expr,
      [
        { series: series('KubeSentinelRemediationFailed', 'failed'), values: bornAt(30, 1, 30) },
        { series: series('KubeSentinelApprovalRequired', 'failed'), values: '0x39 1x20' },
        { series: series('KubeSentinelRemediationFailed', 'sent'), values: '0+1x60' },
        { series: series('KubeSentinelRemediationExhausted', 'logged'), values: bornAt(10, 3, 50) },
      ],
      [
        { minute: 20, samples: [] },
        { minute: 35, samples: [{ labels: '{}', value: 1 }] },
        { minute: 45, samples: [{ labels: '{}', value: 2 }] },
      ],
    );
  });
});
