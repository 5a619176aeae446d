/**
 * `serve` as composed by startServer, in this process: what a rules watch that fails does to
 * /readyz and the metrics.
 */
import assert from 'node:assert/strict';
import { watch } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import type { WatchDirectory } from '../src/rules/watch.js';
import { type RunningServer, startServer } from '../src/server.js';
import { TEST_RULES } from './support/app.js';
import { eventually } from './support/processes.js';

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

describe('serve, when the rules watch fails', () => {
  it('warns in /readyz (still 200: the content check goes on) and sets kube_sentinel_rules_watch_healthy 0, until it works again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kube-sentinel-serve-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'rules.yaml'), TEST_RULES);
    let refuse = true;
    let tick: () => void = () => assert.fail('no periodic check was set up');
    // The system refuses to watch the rules directory (as when its limit of watches is reached).
    const watchDirectory: WatchDirectory = (at, onChange, onError) => {
      if (refuse && at === dir)
        throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
      const watcher = watch(at, (_event, filename) => onChange(filename));
      watcher.on('error', onError);
      return watcher;
    };
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) > 0 });
    const config = loadConfig(['--rules', dir, '--port', '0', '--host', '127.0.0.1'], {});
    const server: RunningServer = await startServer(config, {}, logger, {
      rulesWatch: {
        watchDirectory,
        every: (_ms, check) => {
          tick = check;
          return () => {};
        },
      },
    });
    cleanup.push(() => server.close());

    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), {
      status: 'ready',
      warnings: [
        `rules: cannot watch ${dir} for rule changes: the system limit of file watches is reached (fs.inotify.max_user_watches)`,
      ],
    });
    assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^kube_sentinel_rules_watch_healthy 0$/m);
    assert.ok(lines.some((line) => line.includes('rules watch failed')));

    refuse = false;
    tick();
    await eventually(
      async () => ('warnings' in (await (await fetch(`${server.url}/readyz`)).json()) ? undefined : true),
      '/readyz without warnings',
    );
    assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^kube_sentinel_rules_watch_healthy 1$/m);
  });
});
