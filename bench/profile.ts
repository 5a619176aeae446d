/**
 * Where the time goes: runs the built `kube-sentinel serve` with `node --cpu-prof` under one
 * bench stream, then prints the functions with the most self time and the share of each package.
 * Not part of `npm run bench` (the profiler slows the server it watches).
 *
 *   npx tsx bench/profile.ts [cooldown|submit|no-match] [seconds] [alerts per request, default 20]
 *
 * cooldown: webhook bodies of 20 alerts, all in an active cooldown in Redis (scenario 1);
 * submit: 20 new alerts per request, submitted to the fake Kubernetes API (scenario 2);
 * no-match: /api/v2/alerts bodies of 20 alerts that no rule matches (scenario 3).
 * The profile is kept as bench/results/profile/*.cpuprofile (open it in Chrome DevTools).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeKubeconfig } from '../test/support/kubeconfig.js';
import { freePort } from '../test/support/processes.js';
import { startRedis } from '../test/support/redis-server.js';
import { alertSet, chunks, postableBody, remediableAlert, unmatchedAlert, webhookBody } from './alerts.js';
import { CLI, childEnv, get, post, REPO_ROOT, startFakeKubeProcess, startLoadGenerator } from './children.js';
import type { Stream } from './loadgen.js';
import { table, thousands } from './stats.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  startTime: number;
  endTime: number;
}

const mode = (process.argv[2] ?? 'cooldown') as 'cooldown' | 'submit' | 'no-match';
const seconds = Number(process.argv[3] ?? 10);
const perRequest = Number(process.argv[4] ?? 20);
const PROFILE_DIR = join(REPO_ROOT, 'bench/results/profile');

function where(url: string): string {
  if (url === '') return '(native / V8)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.startsWith('node:')) return 'node internals';
  const own = /\/dist\/(.+)$/.exec(url)?.[1];
  return own ? `kube-sentinel ${own}` : url;
}

function summarize(profile: CpuProfile): string {
  const sampled = profile.samples.length;
  const hits = new Map<number, number>();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  for (const node of profile.nodes) {
    const count = hits.get(node.id) ?? 0;
    if (count === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const place = where(url);
    const name = `${functionName || '(anonymous)'} ${place}${url ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + count);
    const bucket =
      url === ''
        ? functionName || '(native / V8)'
        : place.startsWith('kube-sentinel')
          ? 'kube-sentinel (own code)'
          : place;
    byPlace.set(bucket, (byPlace.get(bucket) ?? 0) + count);
  }
  const share = (count: number) => `${((count / sampled) * 100).toFixed(1)}%`;
  const top = (map: Map<string, number>, n: number) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, count]) => [share(count), name]);
  return [
    `${thousands(sampled)} samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s`,
    '',
    'self time by package',
    table([['share', 'where'], ...top(byPlace, 15)]),
    '',
    'self time by function',
    table([['share', 'function'], ...top(byFunction, 30)]),
  ].join('\n');
}

async function main(): Promise<void> {
  execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(PROFILE_DIR, { recursive: true, force: true });
  mkdirSync(PROFILE_DIR, { recursive: true });

  const redis = await startRedis();
  const fakeKube = await startFakeKubeProcess([
    'argo/diagnose-and-recover',
    'argo/diagnose-memory',
    'argo/network-diagnostics',
    'argo/check-image-registry',
    'argo/diagnose-pod',
  ]);
  const kubeconfig = writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-bench-kube-')), fakeKube.url);
  const port = await freePort();
  const child = spawn(
    'node',
    [
      '--cpu-prof',
      `--cpu-prof-dir=${PROFILE_DIR}`,
      CLI,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--rules',
      join(REPO_ROOT, 'rules/default.yaml'),
      '--redis-url',
      redis.url,
      '--kubeconfig',
      kubeconfig,
      '--max-workflows-per-minute',
      '0',
    ],
    { cwd: REPO_ROOT, env: childEnv(), stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const url = `http://127.0.0.1:${port}`;
  while ((await get(`${url}/readyz`).catch(() => undefined))?.status !== 200)
    await new Promise((r) => setTimeout(r, 50));

  let stream: Stream;
  const remediable = alertSet(100, remediableAlert);
  if (mode === 'cooldown') {
    const bodies = chunks(remediable, perRequest).map(webhookBody);
    for (const body of [...remediable.map((a) => webhookBody([a])), ...bodies])
      await post(`${url}/webhook/alertmanager`, body);
    stream = { kind: 'fixed', path: '/webhook/alertmanager', bodies };
  } else if (mode === 'submit') {
    stream = {
      kind: 'new-alerts',
      path: '/webhook/alertmanager',
      shape: 'webhook',
      alertsPerBody: perRequest,
      tag: 'prof',
      endsAt: '',
    };
  } else {
    const endsAt = new Date(Date.now() + 3600_000).toISOString();
    stream = {
      kind: 'fixed',
      path: '/api/v2/alerts',
      bodies: chunks(alertSet(100, unmatchedAlert), perRequest).map((g) => postableBody(g, endsAt)),
    };
  }
  const loadgen = startLoadGenerator();
  const result = await loadgen.run(url, stream, seconds, 10);
  await loadgen.stop();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  await fakeKube.stop();
  await redis.stop();

  const file = readdirSync(PROFILE_DIR).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${PROFILE_DIR}: did the server exit cleanly?`);
  const profile = JSON.parse(readFileSync(join(PROFILE_DIR, file), 'utf8')) as CpuProfile;
  process.stdout.write(
    `kube-sentinel under the ${mode} stream: ${thousands((result.ok2xx * perRequest) / result.seconds)} alerts/s while profiled (${result.non2xx} non-2xx)\n` +
      `profile: bench/results/profile/${file}\n\n${summarize(profile)}\n`,
  );
}

await main();
process.exit(0);
