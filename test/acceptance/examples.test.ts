import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { fingerprintOf } from '../../src/pipeline/fingerprint.js';
import { ESCALATION_ALERTNAMES } from '../../src/remediation/model.js';
import { loadRules } from '../../src/rules/load.js';
import { renderChart } from '../support/helm.js';
import { REPO_ROOT } from '../support/receiver.js';

const example = (name: string) => join(REPO_ROOT, 'examples', name);

describe('the example configs', () => {
  it('Alertmanager: amtool accepts the config', () => {
    const result = spawnSync('amtool', ['check-config', example('alertmanager.yml')], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });

  it('Alertmanager: routes alerts to Kube Sentinel and people, its own escalations to people only, and sends resolved alerts', () => {
    const receivers = (...labels: string[]) => {
      const result = spawnSync(
        'amtool',
        ['config', 'routes', 'test', `--config.file=${example('alertmanager.yml')}`, ...labels],
        { encoding: 'utf8' },
      );
      assert.equal(result.status, 0, result.stderr);
      return result.stdout.trim().split(',').sort();
    };
    assert.deepEqual(receivers('alertname=KubePodCrashLooping', 'severity=critical', 'namespace=shop'), [
      'default',
      'kube-sentinel',
    ]);
    for (const alertname of ESCALATION_ALERTNAMES)
      assert.deepEqual(receivers(`alertname=${alertname}`, 'severity=critical', 'namespace=shop', 'pod=api-0'), [
        'default',
      ]);
    const am = parse(readFileSync(example('alertmanager.yml'), 'utf8'));
    const webhook = am.receivers.find((r: { name: string }) => r.name === 'kube-sentinel').webhook_configs[0];
    // A resolved alert cancels its remediation awaiting approval (SPEC §9).
    assert.equal(webhook.send_resolved, true);
  });

  it('every example points at the Service the chart creates, with bearer auth', async () => {
    const service = (await renderChart()).find((o) => o.kind === 'Service') as {
      metadata: { name: string; namespace?: string };
      spec: { ports: { port: number }[] };
    };
    const host = `${service.metadata.name}.kube-sentinel.svc:${service.spec.ports[0]!.port}`;
    const am = parse(readFileSync(example('alertmanager.yml'), 'utf8'));
    const webhook = am.receivers.find((r: { name: string }) => r.name === 'kube-sentinel').webhook_configs[0];
    assert.equal(webhook.url, `http://${host}/webhook/alertmanager`);
    assert.equal(webhook.http_config.authorization.type, 'Bearer');
    const prometheus = parse(readFileSync(example('prometheus.yml'), 'utf8'));
    assert.deepEqual(prometheus.alerting.alertmanagers[0].static_configs[0].targets, [host]);
    assert.equal(prometheus.alerting.alertmanagers[0].api_version, 'v2');
    const loki = parse(readFileSync(example('loki-ruler.yaml'), 'utf8'));
    assert.equal(loki.ruler.alertmanager_url, `http://${host}`);
  });

  it('the LogQL alerts carry what the default rules match', async () => {
    const loaded = await loadRules(join(REPO_ROOT, 'rules'));
    assert.ok(loaded.ok);
    const groups = parse(readFileSync(example('loki-rules.yaml'), 'utf8')).groups as {
      rules: { alert: string; labels: Record<string, string>; annotations: Record<string, string> }[];
    }[];
    const expected: Record<string, string> = {
      DatabaseConnectionFailures: 'complex-failure-recovery',
      ContainerOOMKilledInLogs: 'oom-investigation',
      UpstreamConnectionRefused: 'network-diagnostics',
    };
    const seen: Record<string, string | null> = {};
    for (const rule of groups.flatMap((g) => g.rules)) {
      // What the ruler sends: its Go templates filled in with the series' labels.
      const labels = { alertname: rule.alert, namespace: 'shop', pod: 'orders-0', container: 'orders', ...rule.labels };
      const annotations = Object.fromEntries(
        Object.entries(rule.annotations).map(([k, v]) => [
          k,
          v
            .replaceAll('{{ $labels.namespace }}', 'shop')
            .replaceAll('{{ $labels.pod }}', 'orders-0')
            .replaceAll('{{ $value }}', '7'),
        ]),
      );
      seen[rule.alert] =
        loaded.ruleSet.match({
          source: 'api_v2',
          status: 'firing',
          labels,
          annotations,
          fingerprint: fingerprintOf(labels),
        })?.name ?? null;
    }
    assert.deepEqual(seen, expected);
  });

  it('the LogQL expressions keep namespace, pod and container', () => {
    const text = readFileSync(example('loki-rules.yaml'), 'utf8');
    const exprs = (parse(text).groups as { rules: { expr: string }[] }[]).flatMap((g) => g.rules.map((r) => r.expr));
    assert.equal(exprs.length, 3);
    for (const expr of exprs) assert.match(expr, /sum by \(namespace, pod, container\)/);
  });
});
