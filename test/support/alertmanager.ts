import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Started, startProcess } from './processes.js';

const BINARY = 'prometheus-alertmanager';

export interface AlertmanagerOptions {
  /** Where its webhook_config sends notifications. */
  webhookUrl: string;
  /** Sent as `Authorization: Bearer` from a credentials file, as the README tells users to. */
  token?: string;
  /** For an HA pair: this instance's cluster listen address is `127.0.0.1:<clusterPort>`, and it peers with these. */
  cluster?: { port: number; peers: string[] };
  groupBy?: string[];
  /** Listen on this loopback port instead of a free one (to start it where a client already tries to reach it). */
  port?: number;
}

export interface Alertmanager {
  url: string;
  process: Started;
  /** POST /api/v2/alerts, as Prometheus does. */
  postAlerts(alerts: unknown[]): Promise<void>;
  stop(): Promise<void>;
}

/** A real prometheus-alertmanager (Debian package) on a free loopback port, fresh storage each time. */
export async function startAlertmanager(options: AlertmanagerOptions): Promise<Alertmanager> {
  if (spawnSync(BINARY, ['--version']).error) {
    throw new Error(`${BINARY} is not installed: apt-get install -y --no-install-recommends prometheus-alertmanager`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'ks-am-'));
  const tokenFile = join(dir, 'token');
  if (options.token) writeFileSync(tokenFile, options.token);
  const groupBy = JSON.stringify(options.groupBy ?? ['alertname', 'namespace']);
  writeFileSync(
    join(dir, 'alertmanager.yml'),
    `route:
  receiver: kube-sentinel
  group_by: ${groupBy}
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: kube-sentinel
    webhook_configs:
      - url: ${options.webhookUrl}
        send_resolved: true
${options.token ? `        http_config:\n          authorization:\n            credentials_file: ${tokenFile}\n` : ''}`,
  );
  const args = [
    `--config.file=${join(dir, 'alertmanager.yml')}`,
    `--storage.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${options.port ?? 0}`,
  ];
  if (options.cluster) {
    args.push(
      `--cluster.listen-address=127.0.0.1:${options.cluster.port}`,
      '--cluster.advertise-address',
      `127.0.0.1:${options.cluster.port}`,
    );
    for (const peer of options.cluster.peers) args.push(`--cluster.peer=${peer}`);
    args.push('--cluster.settle-timeout=1s', '--cluster.peer-timeout=1s');
  } else {
    args.push('--cluster.listen-address=');
  }
  const process = startProcess(BINARY, args);
  const [, address] = await process.waitFor(/msg="Listening on" address=([\d.:]+)/);
  const url = `http://${address}`;
  return {
    url,
    process,
    async postAlerts(alerts) {
      const response = await fetch(`${url}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(alerts),
      });
      if (!response.ok) throw new Error(`alertmanager answered ${response.status}: ${await response.text()}`);
    },
    async stop() {
      await process.stop('SIGTERM');
    },
  };
}
