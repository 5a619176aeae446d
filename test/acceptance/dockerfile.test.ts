/**
 * No container engine runs on these machines, so the Dockerfile is checked as far as they allow:
 * its rules (pinned bases, non-root user, production dependencies only) by reading it, and its
 * stages by carrying out their WORKDIR/COPY/RUN steps in temporary directories standing in for
 * each stage's filesystem, then starting the runtime stage's CMD from what that stage holds.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startProcess } from '../support/processes.js';
import { REPO_ROOT } from '../support/receiver.js';

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  base: string;
  name?: string;
  steps: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of logical) {
    const [, op = '', args = ''] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [, base = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ base, ...(name ? { name } : {}), steps: [] });
    } else stages.at(-1)?.steps.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const final = stages.at(-1)!;

/** The runtime stage's ENV instructions, as `KEY=value` (a quoted value unquoted). */
function runtimeEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const step of final.steps.filter((s) => s.op === 'ENV')) {
    const eq = step.args.indexOf('=');
    env[step.args.slice(0, eq)] = step.args.slice(eq + 1).replace(/^"(.*)"$/, '$1');
  }
  return env;
}

describe('the Dockerfile', () => {
  it('is multi-stage, every FROM pinned by a full version', () => {
    assert.ok(stages.length >= 2);
    for (const stage of stages) {
      assert.match(stage.base, /^[\w./-]+:\d+\.\d+\.\d+[\w.-]*$/, `${stage.base} must be pinned by version`);
      assert.doesNotMatch(stage.base, /:latest/);
    }
  });

  it('runs as a non-root USER and starts node dist/cli.js serve on 8080', () => {
    const user = final.steps.filter((s) => s.op === 'USER').at(-1)?.args ?? 'root';
    assert.doesNotMatch(user, /^(root|0)(:|$)/);
    const cmd = final.steps.find((s) => s.op === 'CMD' || s.op === 'ENTRYPOINT');
    assert.deepEqual(JSON.parse(cmd!.args), ['node', 'dist/cli.js', 'serve']);
    assert.ok(final.steps.some((s) => s.op === 'EXPOSE' && s.args === '8080'));
  });

  it('keeps test, dependency and build folders out of the build context', () => {
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', 'test', '.git']) assert.ok(ignored.includes(entry), entry);
  });

  describe('its stages, carried out here', () => {
    let work: string;
    const roots = new Map<string, string>();
    before(async () => {
      work = mkdtempSync(join(tmpdir(), 'ks-docker-'));
      for (const [index, stage] of stages.entries()) {
        const root = join(work, `stage-${index}`);
        mkdirSync(root, { recursive: true });
        let cwd = '/';
        const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
        for (const step of stage.steps) {
          const inRoot = (p: string) => join(root, resolve(cwd, p));
          if (step.op === 'WORKDIR') {
            cwd = resolve(cwd, step.args);
            mkdirSync(inRoot('.'), { recursive: true });
          } else if (step.op === 'ENV') {
            const eq = step.args.indexOf('=');
            env[step.args.slice(0, eq)] = step.args.slice(eq + 1).replace(/^"(.*)"$/, '$1');
          } else if (step.op === 'COPY') {
            const parts = step.args.split(/\s+/);
            const from = parts[0]?.startsWith('--from=') ? parts.shift()!.slice('--from='.length) : undefined;
            const dest = parts.pop()!;
            const sourceRoot = from === undefined ? REPO_ROOT : roots.get(from)!;
            for (const source of parts) {
              const src = from === undefined ? join(REPO_ROOT, source) : join(sourceRoot, source);
              const target = dest.endsWith('/') ? join(inRoot(dest), source.split('/').pop()!) : inRoot(dest);
              mkdirSync(dirname(target), { recursive: true });
              cpSync(src, target, { recursive: true, dereference: true });
            }
          } else if (step.op === 'RUN') {
            await promisify(execFile)('sh', ['-c', step.args], { cwd: inRoot('.'), env, maxBuffer: 64 * 1024 * 1024 });
          }
        }
        roots.set(stage.name ?? String(index), root);
        roots.set(String(index), root);
      }
    });
    after(() => rmSync(work, { recursive: true, force: true }));

    it('caps the heap of the runtime stage so a storm stays within the chart memory limit', () => {
      const options = runtimeEnv().NODE_OPTIONS ?? '';
      assert.match(options, /--max-old-space-size=\d+/);
      assert.match(options, /--max-semi-space-size=\d+/);
    });

    it('leaves only production dependencies in the runtime stage', () => {
      const app = join(roots.get(String(stages.length - 1))!, 'app');
      assert.ok(existsSync(join(app, 'node_modules/fastify')));
      for (const dev of ['typescript', 'tsx', 'esbuild', 'kubernetes-models']) {
        assert.equal(existsSync(join(app, 'node_modules', dev)), false, `${dev} must not be in the image`);
      }
      assert.equal(existsSync(join(app, 'src')), false, 'no sources in the image');
    });

    it('serves from what the runtime stage holds: rules, openapi.yaml and a decision', async () => {
      const app = join(roots.get(String(stages.length - 1))!, 'app');
      const cmd = JSON.parse(final.steps.find((s) => s.op === 'CMD')!.args) as string[];
      const server = startProcess(cmd[0]!, [...cmd.slice(1), '--port', '0', '--host', '127.0.0.1'], {
        cwd: app,
        // The runtime stage's ENV (NODE_ENV, NODE_OPTIONS' heap limits), as the image runs it.
        env: { PATH: process.env.PATH ?? '', ...runtimeEnv() },
      });
      try {
        const [, url] = await server.waitFor(/"url":"(http:\/\/[^"]+)".*"msg":"kube-sentinel listening"/);
        assert.equal((await fetch(`${url}/healthz`)).status, 200);
        assert.match(await (await fetch(`${url}/openapi.yaml`)).text(), /^openapi: 3/);
        const res = await fetch(`${url}/webhook/alertmanager`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            version: '4',
            alerts: [
              {
                status: 'firing',
                labels: { alertname: 'KubePodCrashLooping', namespace: 'shop', pod: 'api-0' },
                annotations: { description: 'CrashLoopBackOff' },
              },
            ],
          }),
        });
        const body = (await res.json()) as { decisions: { rule: string; outcome: string }[] };
        assert.equal(body.decisions[0]?.rule, 'general-diagnostics');
        assert.equal(body.decisions[0]?.outcome, 'dry_run');
      } finally {
        assert.equal(await server.stop('SIGTERM'), 0);
      }
    });
  });
});

describe('the npm package', () => {
  it('holds the built CLI, the default rules and the API document, and no sources or tests', () => {
    const [pack] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8' }),
    ) as { files: { path: string }[] }[];
    const files = pack!.files.map((f) => f.path);
    // dist/ is cli.js and the chunks it loads (scripts/build.mjs): every one of them is packed.
    const built = readdirSync(join(REPO_ROOT, 'dist'))
      .filter((name) => name.endsWith('.js'))
      .map((name) => `dist/${name}`);
    assert.ok(built.length > 1, 'the build emits the CLI and its lazily loaded chunks');
    for (const needed of [...built, 'rules/default.yaml', 'openapi.yaml', 'README.md', 'package.json']) {
      assert.ok(files.includes(needed), `${needed} is packed`);
    }
    for (const path of files)
      assert.doesNotMatch(path, /^(src|test|bench|node_modules|helm)\//, `${path} must not be packed`);
    const bin = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> })
      .bin['kube-sentinel'];
    assert.equal(bin, 'dist/cli.js');
    assert.match(readFileSync(join(REPO_ROOT, 'dist/cli.js'), 'utf8'), /^#!\/usr\/bin\/env node/);
  });
});
