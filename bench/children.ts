/**
 * The processes the bench runs: servers under test, the load generator, the fake Kubernetes API,
 * Alertmanager. Every child is killed when the runner exits, however it exits.
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startProcess } from '../test/support/processes.js';
import type { FakeKubeMessage } from './fake-kube-server.js';
import type { LoadRequest, LoadResult, Stream } from './loadgen.js';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const CLI = join(REPO_ROOT, 'dist/cli.js');
export const BUILD_DIR = join(REPO_ROOT, 'bench/results/build');
export const BASELINE_JS = join(BUILD_DIR, 'baseline-server.js');
/** The same, bundled by esbuild as Kube Sentinel's dist/ is (for information in the cold-start rows). */
export const BASELINE_BUNDLE_JS = join(BUILD_DIR, 'baseline-server.bundle.mjs');

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(130);
  });
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The child's environment: nothing of ours leaks in (no TTY hints, no NODE_OPTIONS). */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...extra };
}

/** Resident set size of a process, from /proc (Linux). */
export function rssMbOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) / 1024;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** One request over a fresh connection, with node:http (fetch would load undici on first use and skew the first timing). */
function send(method: 'GET' | 'POST', url: string, body?: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers =
      body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = request(url, { method, agent: false, headers });
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.once('error', reject);
    });
    req.end(body);
  });
}

export const post = (url: string, body: string): Promise<HttpAnswer> => send('POST', url, body);
export const get = (url: string): Promise<HttpAnswer> => send('GET', url);

export interface Server {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
}

/**
 * `node dist/cli.js serve` as users run it. Its decision log lines (one per alert, at info) go to
 * /dev/null: still one write per line, as to a container runtime's pipe, but nothing piles up on
 * disk. Ready when /readyz answers 200.
 */
export async function startKubeSentinel(args: string[]): Promise<Server> {
  const port = await freePort();
  const argv = [CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'info', ...args];
  // BENCH_NODE_OPTIONS: V8 settings for the served process only (e.g. a heap sized for a container).
  const nodeOptions: Record<string, string> = process.env.BENCH_NODE_OPTIONS
    ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS }
    : {};
  const child = track(
    spawn('node', argv, { cwd: REPO_ROOT, env: childEnv(nodeOptions), stdio: ['ignore', 'ignore', 'pipe'] }),
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(
        `kube-sentinel exited (${child.exitCode}) before it was ready; run: node ${argv.join(' ')}\n${stderr}`,
      );
    }
    const ready = await get(`${url}/readyz`).catch(() => undefined);
    if (ready?.status === 200) break;
    if (Date.now() > deadline)
      throw new Error(`kube-sentinel was not ready within 30 s: ${ready?.body ?? 'no answer'}\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { name: 'kube-sentinel', url, pid: child.pid!, stop: stopper(child) };
}

/** The bare fastify baseline (compiled to JavaScript, run with plain node). */
export async function startBaseline(): Promise<Server> {
  const started = startProcess('node', [BASELINE_JS], { cwd: REPO_ROOT, env: childEnv() });
  track(started.child);
  const [, url] = await started.waitFor(/"url":"(http:\/\/[^"]+)"/);
  return { name: 'bare fastify', url: url!, pid: started.child.pid!, stop: stopper(started.child) };
}

/** A real prometheus-alertmanager: fresh storage, no cluster, a route whose receiver notifies nobody. */
export async function startAlertmanager(): Promise<Server & { version: string }> {
  const probe = spawnSync('prometheus-alertmanager', ['--version'], { encoding: 'utf8' });
  if (probe.error)
    throw new Error(
      'prometheus-alertmanager is not installed: apt-get install -y --no-install-recommends prometheus-alertmanager',
    );
  const version = /version (\S+)/.exec(`${probe.stdout}${probe.stderr}`)?.[1] ?? 'unknown';
  const dir = mkdtempSync(join(tmpdir(), 'ks-bench-am-'));
  writeFileSync(
    join(dir, 'alertmanager.yml'),
    [
      'route:',
      '  receiver: blackhole',
      '  group_by: [alertname, namespace]',
      '  group_wait: 30s',
      '  group_interval: 5m',
      '  repeat_interval: 4h',
      'receivers:',
      '  - name: blackhole',
      '',
    ].join('\n'),
  );
  const started = startProcess(
    'prometheus-alertmanager',
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      '--web.listen-address=127.0.0.1:0',
      '--cluster.listen-address=',
    ],
    { env: childEnv() },
  );
  track(started.child);
  const [, address] = await started.waitFor(/msg="Listening on" address=([\d.:]+)/);
  return {
    name: `Alertmanager ${version}`,
    url: `http://${address}`,
    pid: started.child.pid!,
    stop: stopper(started.child),
    version,
  };
}

/** The fake Kubernetes API in its own process (validation off); `created()` counts Workflows it stored. */
export async function startFakeKubeProcess(
  templates: string[],
): Promise<{ url: string; created(): Promise<number>; stop(): Promise<void> }> {
  const child = track(
    fork(join(REPO_ROOT, 'bench/fake-kube-server.ts'), templates, {
      cwd: REPO_ROOT,
      execArgv: ['--import', 'tsx'],
      env: childEnv(),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the fake Kubernetes API exited (${code}) before it was ready`)));
    child.once('message', (message: FakeKubeMessage) => {
      if (message.type === 'ready') resolve(message.url);
    });
  });
  return {
    url,
    created: () =>
      new Promise((resolve) => {
        const onMessage = (message: FakeKubeMessage) => {
          if (message.type !== 'created') return;
          child.off('message', onMessage);
          resolve(message.total);
        };
        child.on('message', onMessage);
        child.send({ type: 'count' });
      }),
    stop: async () => {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.disconnect();
      await exited;
    },
  };
}

/** The autocannon process; one measurement at a time. */
export interface LoadGenerator {
  run(url: string, stream: Stream, seconds: number, connections: number): Promise<LoadResult>;
  stop(): Promise<void>;
}

export function startLoadGenerator(): LoadGenerator {
  const child = track(
    fork(join(REPO_ROOT, 'bench/loadgen.ts'), [], {
      cwd: REPO_ROOT,
      execArgv: ['--import', 'tsx'],
      env: childEnv(),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  let nextId = 1;
  return {
    run(url, stream, seconds, connections) {
      const message: LoadRequest = { id: nextId++, url, stream, seconds, connections };
      return new Promise((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`the load generator exited (${code})`));
        const onMessage = (answer: LoadResult | { id: number; error: string }) => {
          if (answer.id !== message.id) return;
          child.off('message', onMessage);
          child.off('exit', onExit);
          if ('error' in answer) reject(new Error(`load generator: ${answer.error}`));
          else resolve(answer);
        };
        child.on('message', onMessage);
        child.once('exit', onExit);
        child.send(message);
      });
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.disconnect();
      await exited;
    },
  };
}

export interface ColdStart {
  ms: number;
  rssMb: number;
  answer: HttpAnswer;
}

/**
 * Spawn → listening line → POST one alert → response: the time a scale-from-zero start costs the
 * first alert. RSS is read right after that response. stdout is piped (a few lines only here).
 */
export async function coldStart(argv: string[], listening: RegExp, path: string, body: string): Promise<ColdStart> {
  const started = performance.now();
  const child = track(spawn('node', argv, { cwd: REPO_ROOT, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const found = listening.exec(output)?.[1];
      if (found) {
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        resolve(found);
      }
    };
    const onExit = (code: number | null) =>
      reject(new Error(`${argv.join(' ')} exited (${code}) before listening:\n${output}`));
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', onExit);
  });
  // Keep draining: a full pipe would block the child's log writes.
  child.stdout?.resume();
  const answer = await post(`${url}${path}`, body);
  const ms = performance.now() - started;
  const rssMb = rssMbOf(child.pid!);
  await stopper(child)();
  return { ms, rssMb, answer };
}
