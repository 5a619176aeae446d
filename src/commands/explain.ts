import { readFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import type { Config } from '../config.js';
import { alertsFromEither, isExplainBody } from '../pipeline/receive.js';
import { loadRules } from '../rules/load.js';
import { offlinePipeline } from './offline.js';

/**
 * `kube-sentinel explain --alert FILE`: the decision each alert in FILE would get from the
 * serving pipeline's explain stages, with the Workflow it would submit, as YAML.
 */
export async function explainAlerts(file: string, config: Config): Promise<number> {
  let body: unknown;
  try {
    body = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    process.stderr.write(`kube-sentinel: cannot read ${file}: ${(err as Error).message}\n`);
    return 1;
  }
  if (!isExplainBody(body)) {
    process.stderr.write(
      `kube-sentinel: ${file} is neither an Alertmanager webhook body nor a JSON array of v2 alerts\n`,
    );
    return 1;
  }
  const loaded = await loadRules(config.rules);
  if (!loaded.ok) {
    process.stderr.write(`${loaded.errors.join('\n')}\n`);
    return 1;
  }
  const now = Date.now();
  const decisions = await offlinePipeline(loaded.ruleSet, config, () => now).explain(alertsFromEither(body, now));
  const report = decisions.map((decision) => ({
    alertname: decision.alertname,
    fingerprint: decision.fingerprint,
    status: decision.status,
    rule: decision.rule,
    priority: decision.priority,
    outcome: decision.outcome,
    ...(decision.reason ? { reason: decision.reason } : {}),
    ...(decision.cooldownKey ? { cooldownKey: decision.cooldownKey } : {}),
    ...(decision.manifest ? { workflow: decision.manifest } : {}),
  }));
  process.stdout.write(stringify({ alerts: report }));
  return 0;
}
