import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import type { Alert } from '../alert.js';
import type { Config } from '../config.js';
import { fingerprintOf } from '../pipeline/fingerprint.js';
import { parseDuration } from '../rules/duration.js';
import { loadRules } from '../rules/load.js';
import type { RuleSet } from '../rules/types.js';
import { offlinePipeline } from './offline.js';

/**
 * `kube-sentinel test FILE...`: rule unit tests in the style of `promtool test rules`.
 *
 *   rules: ../        # rules file or directory, relative to this file (default: the folder above)
 *   tests:
 *     - name: two pods of one Deployment get one remediation
 *       alerts:
 *         - labels: {alertname: KubePodCrashLooping, namespace: shop, pod: checkout-7d9f8b6c5-x2x9k}
 *           annotations: {description: ...}
 *           status: firing          # default
 *           at: 0s                  # time since the test started; cooldowns run on this clock
 *           expect: {rule: general-diagnostics, outcome: dry_run, template: diagnose-pod,
 *                    cooldown_key: "general-diagnostics:shop/checkout", parameters: {pod: checkout-7d9f8b6c5-x2x9k}}
 *
 * Every alert of a test goes, in order, through the stages `serve` runs, with one empty in-memory
 * cooldown store (so a test can show cooldowns too) and a submitter that only captures the
 * Workflow: `dry_run` stands where `submitted` would.
 */

interface ExpectSpec {
  rule?: string | null;
  outcome?: string;
  cooldown_key?: string;
  template?: string;
  parameters?: Record<string, string>;
}

interface AlertSpec {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  status?: 'firing' | 'resolved';
  at?: string;
  expect?: ExpectSpec;
}

interface TestFile {
  rules?: string;
  tests?: { name?: string; alerts?: AlertSpec[] }[];
}

export interface RuleTestReport {
  passed: number;
  failed: number;
  messages: string[];
}

const T0 = Date.parse('2026-01-01T00:00:00Z');

export async function runRuleTests(files: readonly string[], config: Config): Promise<RuleTestReport> {
  const report: RuleTestReport = { passed: 0, failed: 0, messages: [] };
  for (const file of files) {
    let doc: TestFile;
    try {
      doc = (parse(await readFile(file, 'utf8')) ?? {}) as TestFile;
    } catch (err) {
      report.failed++;
      report.messages.push(`${file}: cannot read test file: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    const rulesPath = resolve(dirname(file), doc.rules ?? '..');
    const loaded = await loadRules(rulesPath);
    if (!loaded.ok) {
      report.failed++;
      report.messages.push(`${file}: rules ${rulesPath} do not load:`, ...loaded.errors.map((e) => `  ${e}`));
      continue;
    }
    if (!Array.isArray(doc.tests) || doc.tests.length === 0) {
      report.failed++;
      report.messages.push(`${file}: no tests (expected a "tests:" list)`);
      continue;
    }
    for (const [index, test] of doc.tests.entries()) {
      const name = test.name ?? `test ${index + 1}`;
      const problems = await runOne(test.alerts ?? [], loaded.ruleSet, config);
      if (problems.length === 0) report.passed++;
      else {
        report.failed++;
        report.messages.push(...problems.map((p) => `${file}: "${name}": ${p}`));
      }
    }
  }
  return report;
}

async function runOne(alerts: AlertSpec[], ruleSet: RuleSet, config: Config): Promise<string[]> {
  if (alerts.length === 0) return ['no alerts'];
  let clock = T0;
  const pipeline = offlinePipeline(ruleSet, config, () => clock);
  const problems: string[] = [];
  for (const [i, spec] of alerts.entries()) {
    const where = `alert ${i + 1}`;
    if (spec.at !== undefined) {
      const offset = parseDuration(String(spec.at));
      if (offset === null) {
        problems.push(`${where}: "at: ${spec.at}" is not a duration`);
        continue;
      }
      clock = T0 + offset;
    }
    const labels = Object.fromEntries(Object.entries(spec.labels ?? {}).map(([k, v]) => [k, String(v)]));
    const alert: Alert = {
      source: 'alertmanager',
      status: spec.status ?? 'firing',
      labels,
      annotations: Object.fromEntries(Object.entries(spec.annotations ?? {}).map(([k, v]) => [k, String(v)])),
      fingerprint: fingerprintOf(labels),
    };
    const [decision] = await pipeline.ingest([alert]);
    if (!decision) continue;
    const want = spec.expect ?? {};
    const check = (what: string, expected: unknown, actual: unknown) => {
      if (expected !== undefined && expected !== actual) {
        problems.push(
          `${where}: expected ${what} ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}${decision.reason ? ` (${decision.reason})` : ''}`,
        );
      }
    };
    check('rule', want.rule, decision.rule);
    check('outcome', want.outcome, decision.outcome);
    check('cooldown_key', want.cooldown_key, decision.cooldownKey);
    if (want.template !== undefined || want.parameters !== undefined) {
      const workflow = decision.manifest;
      check('template', want.template, workflow?.spec.workflowTemplateRef?.name ?? workflow?.spec.templates?.[0]?.name);
      const params = new Map(workflow?.spec.arguments.parameters.map((p) => [p.name, p.value]));
      for (const [name, value] of Object.entries(want.parameters ?? {}))
        check(`parameter ${name}`, String(value), params.get(name));
    }
  }
  return problems;
}
