import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import type { LoadResult } from '../../src/rules/load.js';
import type { RulesWatcher } from '../../src/rules/watch.js';
import { watchRules } from '../../src/rules/watch.js';

const TIMEOUT_MS = 5_000;

function rulesText(name: string): string {
  return [
    'rules:',
    `  - name: ${name}`,
    '    match: {pattern: "error"}',
    '    priority: P1',
    '    remediation: {action: trigger-argo-workflow, params: {workflow_template: t}}',
    '',
  ].join('\n');
}

/** Callbacks in arrival order; `next` waits for the next one, failing after a bounded time. */
class Arrivals<T> {
  private readonly queued: T[] = [];
  private readonly waiting: ((value: T) => void)[] = [];

  push(value: T): void {
    const waiter = this.waiting.shift();
    if (waiter !== undefined) waiter(value);
    else this.queued.push(value);
  }

  get pending(): number {
    return this.queued.length;
  }

  next(what: string): Promise<T> {
    const queued = this.queued.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      this.waiting.push((value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  }
}

function ruleNames(result: LoadResult): string[] {
  if (!result.ok) throw new Error(`expected a successful reload, got:\n${result.errors.join('\n')}`);
  return result.ruleSet.rules.map((rule) => rule.name);
}

const tempDirs: string[] = [];
const watchers: RulesWatcher[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kube-sentinel-watch-'));
  tempDirs.push(dir);
  return dir;
}
function watched(path: string): { watcher: RulesWatcher; reloads: Arrivals<LoadResult>; unchanged: Arrivals<true> } {
  const reloads = new Arrivals<LoadResult>();
  const unchanged = new Arrivals<true>();
  const watcher = watchRules(path, {
    debounceMs: 20,
    onReload: (result) => reloads.push(result),
    onUnchanged: () => unchanged.push(true),
  });
  watchers.push(watcher);
  return { watcher, reloads, unchanged };
}
afterEach(() => {
  for (const watcher of watchers.splice(0)) watcher.close();
});
after(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

describe('watchRules', () => {
  it('reloads a rules file after it is rewritten', async () => {
    const dir = await tempDir();
    const file = join(dir, 'rules.yaml');
    await writeFile(file, rulesText('before'));
    const { watcher, reloads } = watched(file);
    await watcher.ready;
    await writeFile(file, rulesText('after'));
    assert.deepEqual(ruleNames(await reloads.next('reload')), ['after']);
  });

  it('reloads a directory when a rules file is added', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), rulesText('first'));
    const { watcher, reloads } = watched(dir);
    await watcher.ready;
    await writeFile(join(dir, 'b.yaml'), rulesText('second'));
    assert.deepEqual(ruleNames(await reloads.next('reload')), ['first', 'second']);
  });

  it('reports an invalid rewrite with file:line errors, then the fixed rules', async () => {
    const dir = await tempDir();
    const file = join(dir, 'rules.yaml');
    await writeFile(file, rulesText('good'));
    const { watcher, reloads } = watched(file);
    await watcher.ready;
    await writeFile(file, rulesText('good').replace('P1', 'P9'));
    const broken = await reloads.next('failed reload');
    assert.deepEqual(broken.ok ? [] : broken.errors, [
      `${file}:4: priority "P9" is not one of P1, P2, P3, P4, critical, high, medium, low`,
    ]);
    await writeFile(file, rulesText('fixed'));
    assert.deepEqual(ruleNames(await reloads.next('reload')), ['fixed']);
  });

  it('skips the callback when the files are rewritten with the same bytes', async () => {
    const dir = await tempDir();
    const file = join(dir, 'rules.yaml');
    await writeFile(file, rulesText('same'));
    const { watcher, reloads, unchanged } = watched(file);
    await watcher.ready;
    await writeFile(file, rulesText('same'));
    await unchanged.next('unchanged notice');
    assert.equal(reloads.pending, 0);
    await writeFile(file, rulesText('changed'));
    assert.deepEqual(ruleNames(await reloads.next('reload')), ['changed']);
  });

  for (const target of ['the directory', 'the visible file'] as const) {
    it(`sees a ConfigMap-style atomic swap of ..data, watching ${target}`, async () => {
      const dir = await tempDir();
      await mkdir(join(dir, '..2026_01'));
      await writeFile(join(dir, '..2026_01', 'rules.yaml'), rulesText('from-first-version'));
      await symlink('..2026_01', join(dir, '..data'));
      await symlink(join('..data', 'rules.yaml'), join(dir, 'rules.yaml'));
      const { watcher, reloads } = watched(target === 'the directory' ? dir : join(dir, 'rules.yaml'));
      await watcher.ready;

      await mkdir(join(dir, '..2026_02'));
      await writeFile(join(dir, '..2026_02', 'rules.yaml'), rulesText('from-second-version'));
      await symlink('..2026_02', join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));

      assert.deepEqual(ruleNames(await reloads.next('reload after the swap')), ['from-second-version']);
    });
  }
});
