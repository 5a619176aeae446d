import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { dryRunSubmitter, type WorkflowSubmitter } from '../../src/kube/client.js';
import type { OptOuts } from '../../src/kube/opt-out.js';
import type { SubmitResult } from '../../src/kube/result.js';
import type { LocalPauses } from '../../src/pipeline/local-pauses.js';
import { createMetrics } from '../../src/pipeline/metrics.js';
import type { ClusterRouting } from '../../src/pipeline/route.js';
import { loadRules } from '../../src/rules/load.js';
import type { RuleSet } from '../../src/rules/types.js';
import type { CooldownStore } from '../../src/stores/cooldown-store.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';

/** Writes rules YAML to a fresh temp file and loads it; throws with the file:line errors when invalid. */
export async function rulesFrom(yaml: string): Promise<RuleSet> {
  const dir = mkdtempSync(join(tmpdir(), 'ks-rules-'));
  const file = join(dir, 'rules.yaml');
  writeFileSync(file, yaml);
  const loaded = await loadRules(file);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.ruleSet;
}

export const TEST_RULES = `
rules:
  - name: crashloop
    match:
      pattern: "(?i)crash ?loop"
    priority: P3
    remediation:
      action: trigger-argo-workflow
      params:
        workflow_template: diagnose-pod
      cooldown: 10m
  - name: db-recover
    match:
      pattern: "database connection failed"
      labels: ['severity=~"critical|warning"']
    priority: P1
    remediation:
      action: trigger-argo-workflow
      params:
        workflow_template: diagnose-and-recover
        arguments: '[{"name": "replicas", "value": "5"}, {"name": "reason", "value": "{{ annotations.summary }}"}]'
      cooldown: 10m
  - name: restart-inline
    match:
      pattern: "please restart"
    priority: P2
    on_resolved: false
    remediation:
      action: trigger-argo-workflow
      params:
        workflow_name: restart
        inline_action: restart
      cooldown: 5m
`;

/** Where the clock of a test app starts. */
export const TEST_START = Date.parse('2026-11-26T12:00:00Z');

export interface TestApp {
  app: ReturnType<typeof buildApp>;
  store: CooldownStore;
  clock: { now: number };
  logs: () => Record<string, unknown>[];
}

/** buildApp with an injected clock, captured logs and (by default) an in-memory store and dry-run. */
export async function testApp(
  options: {
    config?: Partial<Config>;
    args?: string[];
    store?: CooldownStore;
    submitter?: WorkflowSubmitter;
    rules?: RuleSet;
    /** Shared by several apps (replicas), and by the stores made with it. */
    clock?: { now: number };
    clusters?: ClusterRouting;
    pauses?: LocalPauses;
    /** Opt-out annotations (SPEC §11), built on the app's clock; none by default. */
    optOuts?: (now: () => number) => OptOuts;
    /** The built page GET / serves (dist/page.html by default). */
    pagePath?: string;
  } = {},
): Promise<TestApp> {
  const clock = options.clock ?? { now: TEST_START };
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) > 0 });
  const config = { ...loadConfig(options.args ?? [], {}), replica: 'test', ...options.config };
  const store = options.store ?? new MemoryCooldownStore({ now: () => clock.now });
  const ruleSet = options.rules ?? (await rulesFrom(TEST_RULES));
  const app = buildApp(config, {
    rules: () => ruleSet,
    store,
    submitter: options.submitter ?? dryRunSubmitter,
    metrics: createMetrics({ defaults: false }),
    logger,
    now: () => clock.now,
    ...(options.clusters ? { clusters: options.clusters } : {}),
    ...(options.pauses ? { pauses: options.pauses } : {}),
    ...(options.optOuts ? { optOuts: options.optOuts(() => clock.now) } : {}),
    ...(options.pagePath ? { pagePath: options.pagePath } : {}),
  });
  return { app, store, clock, logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export function webhook(alerts: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  return { version: '4', status: 'firing', receiver: 'kube-sentinel', groupKey: '{}:{}', alerts, ...extra };
}

export function firing(labels: Record<string, string>, annotations: Record<string, string> = {}) {
  return { status: 'firing', labels, annotations, startsAt: '2026-11-26T11:59:00Z', endsAt: '0001-01-01T00:00:00Z' };
}

/** A cluster submitter (not dry-run) whose next answer the test chooses: created until told otherwise. */
export function scriptedSubmitter(): WorkflowSubmitter & { next: SubmitResult } {
  return {
    mode: 'cluster',
    target: 'scripted',
    next: { kind: 'created', status: 201, retryable: false },
    async create() {
      return this.next;
    },
  };
}
