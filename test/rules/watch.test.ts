import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { type LoadResult, loadRuleSources } from '../../src/rules/load.js';
import { type RulesWatcher, type WatchHealth, type WatchOptions, watchRules } from '../../src/rules/watch.js';

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
function watched(
  path: string,
  extra: Partial<WatchOptions> & { offThread?: boolean } = {},
): { watcher: RulesWatcher; reloads: Arrivals<LoadResult>; unchanged: Arrivals<true>; health: Arrivals<WatchHealth> } {
  const reloads = new Arrivals<LoadResult>();
  const unchanged = new Arrivals<true>();
  const health = new Arrivals<WatchHealth>();
  const { offThread, ...options } = extra;
  const watcher = watchRules(path, {
    debounceMs: 20,
    // In this thread unless asked: a worker thread running TypeScript starts in seconds.
    ...(offThread ? {} : { load: async (at, sources) => loadRuleSources(at, sources) }),
    // Only the file watches, unless a test drives the periodic check.
    checkEveryMs: 0,
    onReload: (result) => reloads.push(result),
    onUnchanged: () => unchanged.push(true),
    onHealth: (state) => health.push(state),
    ...options,
  });
  watchers.push(watcher);
  return { watcher, reloads, unchanged, health };
}
afterEach(() => {
  for (const watcher of watchers.splice(0)) watcher.close();
});
after(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

describe('watchRules', () => {
  it('reloads a rules file after it is rewritten, validating in a worker thread', async () => {
    const dir = await tempDir();
    const file = join(dir, 'rules.yaml');
    await writeFile(file, rulesText('before'));
    const { watcher, reloads } = watched(file, { offThread: true });
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

  it('reports an invalid rewrite with file:line errors, then the fixed rules, from a worker thread', async () => {
    const dir = await tempDir();
    const file = join(dir, 'rules.yaml');
    await writeFile(file, rulesText('good'));
    const { watcher, reloads } = watched(file, { offThread: true });
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

  it('sees every ConfigMap-style swap of ..data, three in a row', async () => {
    const dir = await tempDir();
    const publish = async (version: number) => {
      await mkdir(join(dir, `..2026_0${version}`));
      await writeFile(join(dir, `..2026_0${version}`, 'rules.yaml'), rulesText(`version-${version}`));
      await symlink(`..2026_0${version}`, join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      // kubelet removes the folder the old ..data pointed to.
      if (version > 1) await rm(join(dir, `..2026_0${version - 1}`), { recursive: true });
    };
    await publish(1);
    await symlink(join('..data', 'rules.yaml'), join(dir, 'rules.yaml'));
    const { watcher, reloads } = watched(dir);
    await watcher.ready;
    for (const version of [2, 3, 4]) {
      await publish(version);
      assert.deepEqual(ruleNames(await reloads.next(`reload after swap ${version}`)), [`version-${version}`]);
    }
  });

  for (const layout of ['rules in the linked checkout', 'the link itself']) {
    it(`sees every git-sync style swap of a symlink above the rules (${layout}), three in a row`, async () => {
      // git-sync: each revision is checked out in its own worktree, then the `current` link is
      // swapped atomically to it and the old worktree removed.
      const root = await tempDir();
      const checkout = async (version: number) => {
        const worktree = join(root, '.worktrees', `rev${version}`);
        await mkdir(join(worktree, 'rules'), { recursive: true });
        await writeFile(join(worktree, 'rules', 'rules.yaml'), rulesText(`revision-${version}`));
        await symlink(join('.worktrees', `rev${version}`), join(root, 'current.tmp'));
        await rename(join(root, 'current.tmp'), join(root, 'current'));
        if (version > 1) await rm(join(root, '.worktrees', `rev${version - 1}`), { recursive: true });
      };
      await checkout(1);
      const path = layout === 'the link itself' ? join(root, 'current') : join(root, 'current', 'rules');
      if (layout === 'the link itself')
        await writeFile(join(root, '.worktrees', 'rev1', 'rules.yaml'), rulesText('revision-1'));
      const { watcher, reloads } = watched(path);
      await watcher.ready;
      for (const version of [2, 3, 4]) {
        await checkout(version);
        if (layout === 'the link itself')
          await writeFile(join(root, '.worktrees', `rev${version}`, 'rules.yaml'), rulesText(`revision-${version}`));
        const names = ruleNames(await reloads.next(`reload after swap ${version}`));
        // The link itself: the swap and the file written after it may be seen as one reload or two.
        if (layout === 'the link itself' && names.length === 0) continue;
        assert.deepEqual(names, [`revision-${version}`]);
      }
    });
  }

  it('sees a rules directory renamed away and replaced, three times in a row', async () => {
    const root = await tempDir();
    const dir = join(root, 'rules');
    await mkdir(dir);
    await writeFile(join(dir, 'rules.yaml'), rulesText('copy-1'));
    const { watcher, reloads } = watched(dir);
    await watcher.ready;
    for (const version of [2, 3, 4]) {
      await mkdir(join(root, 'rules.new'));
      await writeFile(join(root, 'rules.new', 'rules.yaml'), rulesText(`copy-${version}`));
      await rename(dir, join(root, `rules.old-${version}`));
      await rename(join(root, 'rules.new'), dir);
      // Between the two renames there may be no rules at all: a failed reload, then the new ones.
      let result = await reloads.next(`reload after replacement ${version}`);
      if (!result.ok) result = await reloads.next(`reload after replacement ${version}, once complete`);
      assert.deepEqual(ruleNames(result), [`copy-${version}`]);
      // Changing the old directory, still watched by inode before, must not matter now.
      await writeFile(join(root, `rules.old-${version}`, 'rules.yaml'), rulesText('stale'));
    }
    assert.equal(reloads.pending, 0);
  });

  it('finds a change the file watches missed at the next periodic check', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'rules.yaml'), rulesText('before'));
    let tick: () => void = () => assert.fail('no periodic check was set up');
    const { watcher, reloads } = watched(dir, {
      checkEveryMs: 5_000,
      every: (ms, check) => {
        assert.equal(ms, 5_000);
        tick = check;
        return () => {};
      },
      // A watch that never reports anything, as after a swap the system did not tell about.
      watchDirectory: () => ({ close() {} }),
    });
    await watcher.ready;
    await writeFile(join(dir, 'rules.yaml'), rulesText('after'));
    tick();
    assert.deepEqual(ruleNames(await reloads.next('reload at the periodic check')), ['after']);
  });

  it('reports a watch that cannot be set, and that works again once it can', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'rules.yaml'), rulesText('same'));
    let refuse = true;
    let tick: () => void = () => {};
    const { watcher, health } = watched(dir, {
      checkEveryMs: 5_000,
      every: (_ms, check) => {
        tick = check;
        return () => {};
      },
      watchDirectory: (at) => {
        if (refuse && at === dir)
          throw Object.assign(new Error(`ENOSPC: System limit for number of file watchers reached, watch '${at}'`), {
            code: 'ENOSPC',
          });
        return { close() {} };
      },
    });
    await watcher.ready;
    const failed = {
      healthy: false,
      problem: `cannot watch ${dir} for rule changes: the system limit of file watches is reached (fs.inotify.max_user_watches)`,
    };
    assert.deepEqual(await health.next('unhealthy'), failed);
    assert.deepEqual(watcher.health(), failed);
    refuse = false;
    tick();
    assert.deepEqual(await health.next('healthy again'), { healthy: true, problem: null });
  });

  it('reports a watch that fails once set, and sets it again', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'rules.yaml'), rulesText('same'));
    const failWatch: ((err: Error) => void)[] = [];
    let armedOnDir = 0;
    const { watcher, health } = watched(dir, {
      watchDirectory: (at, _onChange, onError) => {
        if (at === dir) {
          armedOnDir += 1;
          failWatch.push(onError);
        }
        return { close() {} };
      },
    });
    await watcher.ready;
    assert.equal(armedOnDir, 1);
    failWatch[0]!(new Error('watch stopped'));
    assert.deepEqual(await health.next('unhealthy'), {
      healthy: false,
      problem: `cannot watch ${dir} for rule changes: watch stopped`,
    });
    assert.deepEqual(await health.next('healthy again'), { healthy: true, problem: null });
    assert.equal(armedOnDir, 2);
  });

  it('reports the rules directory gone as a failed reload, and watches it again once it is back', async () => {
    const root = await tempDir();
    const dir = join(root, 'rules');
    await mkdir(dir);
    await writeFile(join(dir, 'rules.yaml'), rulesText('first'));
    const { watcher, reloads } = watched(dir);
    await watcher.ready;
    await rm(dir, { recursive: true });
    const gone = await reloads.next('failed reload');
    assert.deepEqual(gone.ok ? [] : gone.errors, [`${dir}: no such file or directory`]);
    // Watching where it will appear again is not a failed watch.
    assert.deepEqual(watcher.health(), { healthy: true, problem: null });
    await mkdir(dir);
    await writeFile(join(dir, 'rules.yaml'), rulesText('back'));
    let result = await reloads.next('reload');
    // An empty directory may be read before its file is written.
    if (!result.ok) result = await reloads.next('reload with the file');
    assert.deepEqual(ruleNames(result), ['back']);
    await writeFile(join(dir, 'rules.yaml'), rulesText('changed'));
    assert.deepEqual(ruleNames(await reloads.next('reload of a change in the new directory')), ['changed']);
  });
});
