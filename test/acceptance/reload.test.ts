/**
 * Rule reload under load: while alerts keep arriving, the rules directory is swapped the way a
 * ConfigMap update does it (a new timestamped folder, then an atomic rename of the `..data`
 * symlink), alternating two rule sets and, in between, an invalid one. No request may see half a
 * rule set: every response's decisions come from one version, and an invalid version is never seen.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../support/processes.js';
import { type Receiver, startReceiver } from '../support/receiver.js';

function ruleSet(version: string): string {
  // Two files per version, so a reader that saw one new file and one old one would be caught.
  return `
rules:
${['crash', 'oom']
  .map(
    (what) => `  - name: ${what}-${version}
    match: {pattern: "${what}"}
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: t-${version}}
      cooldown: 1s
      cooldown_key: [alertname]`,
  )
  .join('\n')}
`;
}

describe('rule reload under load', () => {
  let dir: string;
  let receiver: Receiver;
  let generation = 0;

  /** What kubelet does to a ConfigMap volume: write a new folder, then swap ..data atomically. */
  const publish = (files: Record<string, string>) => {
    const folder = `..2026_11_26_${String(++generation).padStart(4, '0')}`;
    mkdirSync(join(dir, folder));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, folder, name), text);
    symlinkSync(folder, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ks-reload-'));
    publish({
      'a.yaml': ruleSet('v1').split('\n  - name: oom')[0]!,
      'b.yaml': `rules:\n  - name: oom${ruleSet('v1').split('\n  - name: oom')[1]!}`,
    });
    for (const name of ['a.yaml', 'b.yaml']) symlinkSync(join('..data', name), join(dir, name));
    receiver = await startReceiver(['--port', '0', '--rules', dir, '--max-workflows-per-minute', '0']);
  });
  after(() => receiver?.stop());

  const reloads = async (result: 'success' | 'failure') => {
    const metrics = await (await fetch(`${receiver.url}/metrics`)).text();
    return Number(
      new RegExp(`^kube_sentinel_rules_reloads_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0,
    );
  };

  it('answers every request from exactly one complete, valid rule set', async () => {
    const versions = ['v1', 'v2'];
    const split = (text: string) => ({
      'a.yaml': text.split('\n  - name: oom')[0]!,
      'b.yaml': `rules:\n  - name: oom${text.split('\n  - name: oom')[1]!}`,
    });
    let stop = false;
    const seen = new Set<string>();
    const load = (async () => {
      let requests = 0;
      while (!stop && requests < 5000) {
        requests++;
        const res = await fetch(`${receiver.url}/v1/explain`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify([{ labels: { alertname: 'crash' } }, { labels: { alertname: 'oom' } }]),
        });
        assert.equal(res.status, 200);
        const { decisions } = (await res.json()) as { decisions: { rule: string | null }[] };
        const suffixes = new Set(decisions.map((d) => d.rule?.split('-')[1] ?? 'none'));
        assert.equal(suffixes.size, 1, `one request saw two rule sets: ${JSON.stringify(decisions)}`);
        const [version] = suffixes;
        assert.ok(version === 'v1' || version === 'v2', `unexpected rules ${version}`);
        seen.add(version!);
      }
      return requests;
    })();
    for (let round = 0; round < 6; round++) {
      const version = versions[round % 2 === 0 ? 1 : 0]!;
      // An invalid version first: refused, the previous rules stay.
      publish({ 'a.yaml': 'rules:\n  - name: Broken_Name\n', 'b.yaml': 'rules: []\n' });
      // Counted by the receiver, not in its log: the test keeps only the last MB of a log that the
      // load above fills with a line per decision (test/support/processes.ts).
      await eventually(
        async () => ((await reloads('failure')) >= round + 1 ? true : undefined),
        'the invalid rules to be refused',
      );
      publish(split(ruleSet(version)));
      await eventually(async () => {
        const rules = (await (await fetch(`${receiver.url}/v1/rules`)).json()) as { rules: { name: string }[] };
        return rules.rules.every((r) => r.name.endsWith(version)) || undefined;
      }, `rules ${version} in force`);
    }
    stop = true;
    const requests = await load;
    assert.ok(requests > 20, `only ${requests} requests were made during the reloads`);
    assert.deepEqual([...seen].sort(), ['v1', 'v2']);
    const metrics = await (await fetch(`${receiver.url}/metrics`)).text();
    assert.match(metrics, /kube_sentinel_rules_reloads_total\{result="failure"\} [1-9]/);
    assert.match(metrics, /kube_sentinel_rules_reloads_total\{result="success"\} [1-9]/);
  });
});

describe('a replaced rules directory', () => {
  let root: string;
  let receiver: Receiver;
  let revision = 0;

  const rulesNamed = (name: string) => `
rules:
  - name: ${name}
    match: {pattern: "crash"}
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: t}
`;
  /** What git-sync does: check the revision out in a worktree of its own, swap `current` to it, drop the old one. */
  const checkout = () => {
    revision += 1;
    const worktree = join(root, '.worktrees', `rev${revision}`);
    mkdirSync(join(worktree, 'rules'), { recursive: true });
    writeFileSync(join(worktree, 'rules', 'rules.yaml'), rulesNamed(`revision-${revision}`));
    symlinkSync(join('.worktrees', `rev${revision}`), join(root, 'current.tmp'));
    renameSync(join(root, 'current.tmp'), join(root, 'current'));
    if (revision > 1) rmSync(join(root, '.worktrees', `rev${revision - 1}`), { recursive: true });
  };
  const inForce = async () =>
    ((await (await fetch(`${receiver.url}/v1/rules`)).json()) as { rules: { name: string }[] }).rules.map(
      (r) => r.name,
    );

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'ks-git-sync-'));
    checkout();
    receiver = await startReceiver(['--port', '0', '--rules', join(root, 'current', 'rules')]);
  });
  after(() => receiver?.stop());

  it('picks up every git-sync style swap of the link above the rules, and of the directory itself', async () => {
    for (let swap = 0; swap < 3; swap++) {
      checkout();
      const expected = `revision-${revision}`;
      await eventually(async () => ((await inForce()).includes(expected) ? true : undefined), `${expected} in force`);
    }
    // The rules directory renamed away and another put in its place, twice.
    const rules = join(root, 'current', 'rules');
    for (const copy of ['copy-1', 'copy-2']) {
      mkdirSync(join(root, 'current', 'rules.new'));
      writeFileSync(join(root, 'current', 'rules.new', 'rules.yaml'), rulesNamed(copy));
      renameSync(rules, join(root, 'current', `rules.${copy}.old`));
      renameSync(join(root, 'current', 'rules.new'), rules);
      await eventually(async () => ((await inForce()).includes(copy) ? true : undefined), `${copy} in force`);
    }
    const metrics = await (await fetch(`${receiver.url}/metrics`)).text();
    assert.match(metrics, /^kube_sentinel_rules_watch_healthy 1$/m);
    assert.match(metrics, /^kube_sentinel_rules_last_reload_success 1$/m);
    assert.equal((await fetch(`${receiver.url}/readyz`)).status, 200);
  });
});
