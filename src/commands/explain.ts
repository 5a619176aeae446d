import { readFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import type { Alert } from '../alert.js';
import { loadClusters } from '../clusters.js';
import type { Config } from '../config.js';
import type { Decision } from '../decision.js';
import { alertsFromEither, ExplainBody } from '../pipeline/receive.js';
import { compileValidator } from '../routes/typebox.js';
import { loadRules } from '../rules/load.js';
import { offlinePipeline } from './offline.js';

const SHAPES = 'an Alertmanager webhook body, a JSON array of v2 alerts, or one alert';

/**
 * As the server reads a body (fastify's onProtoPoisoning and onConstructorPoisoning: 'remove'):
 * a `__proto__` key, or a `constructor` that holds a `prototype`, is dropped wherever it is.
 */
function withoutPrototypeKeys(key: string, value: unknown): unknown {
  if (key === '__proto__') return undefined;
  if (key === 'constructor' && typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype')) {
    return undefined;
  }
  return value;
}

/** What the alert holds, as the receiver read it (a v2 alert's status comes from its endsAt). */
function shown(alert: Alert): Record<string, unknown> {
  return {
    status: alert.status,
    labels: alert.labels,
    annotations: alert.annotations,
    ...(alert.startsAt === undefined ? {} : { startsAt: alert.startsAt }),
    ...(alert.endsAt === undefined ? {} : { endsAt: alert.endsAt }),
    ...(alert.generatorURL === undefined ? {} : { generatorURL: alert.generatorURL }),
  };
}

function report(alert: Alert, decision: Decision): Record<string, unknown> {
  const { manifest, retryAfterSeconds: _, ...answer } = decision;
  return { alert: shown(alert), decision: answer, ...(manifest ? { manifest } : {}) };
}

/**
 * `kube-sentinel explain --alert FILE`: each alert in FILE beside the decision it would get from
 * the serving pipeline's explain stages, with the Workflow it would submit, as YAML.
 */
export async function explainAlerts(file: string, config: Config): Promise<number> {
  let body: unknown;
  try {
    body = JSON.parse(await readFile(file, 'utf8'), withoutPrototypeKeys);
  } catch (err) {
    process.stderr.write(`kube-sentinel: cannot read ${file}: ${(err as Error).message}\n`);
    return 1;
  }
  const checked = compileValidator(ExplainBody)(body);
  if ('error' in checked) {
    const problem = checked.error[0];
    const where = problem?.instancePath ? problem.instancePath.slice(1).replaceAll('/', '.') : 'the top level';
    process.stderr.write(`kube-sentinel: ${file} is not ${SHAPES}: at ${where}: ${problem?.message ?? 'invalid'}\n`);
    return 1;
  }
  const loaded = await loadRules(config.rules);
  if (!loaded.ok) {
    process.stderr.write(`${loaded.errors.join('\n')}\n`);
    return 1;
  }
  const now = Date.now();
  const alerts = alertsFromEither(checked.value as ExplainBody, now);
  const clusters = config.clusters ? loadClusters(config.clusters) : undefined;
  const decisions = await offlinePipeline(loaded.ruleSet, config, () => now, clusters).explain(alerts);
  process.stdout.write(stringify({ alerts: alerts.map((alert, i) => report(alert, decisions[i] as Decision)) }));
  return 0;
}
