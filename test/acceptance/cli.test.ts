/**
 * The built `kube-sentinel` CLI (dist/cli.js; `npm test` builds first) driven as a user runs it:
 * exit codes, what it prints, and `serve` end to end over HTTP.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { eventually } from '../support/processes.js';
import { CLI, REPO_ROOT, type Receiver, startReceiver } from '../support/receiver.js';

const FIXTURES = join(REPO_ROOT, 'test/fixtures/cli');
const fixture = (name: string): string => join(FIXTURES, name);

interface Run {
  /** The exit code; null when the command had to be killed (it hung, e.g. a server that started). */
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI to completion with a clean environment (a developer's PORT or KUBECONFIG must not
 * leak in). Asynchronous so that independent commands can run side by side; a command that does
 * not exit within timeoutMs is killed and reported with status null.
 */
function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code, stdout, stderr });
    });
  });
}

/** For assertion messages: everything the command printed. */
function printed(run: Run): string {
  return `exit ${run.status}\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

interface WorkflowParameter {
  name: string;
  value: string;
}

interface ExplainedAlert {
  /** What the file holds for this alert, as the receiver read it. */
  alert: { status: string; labels: Record<string, string>; annotations: Record<string, string>; endsAt?: string };
  decision: { alertname: string; rule: string | null; priority: string | null; outcome: string; cooldownKey?: string };
  manifest?: {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace: string; labels: Record<string, string> };
    spec: { workflowTemplateRef?: { name: string }; arguments: { parameters: WorkflowParameter[] } };
  };
}

function parametersOf(alert: ExplainedAlert): Record<string, string> {
  return Object.fromEntries((alert.manifest?.spec.arguments.parameters ?? []).map((p) => [p.name, p.value]));
}

const temporaryDirectories: string[] = [];
async function temporaryDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'kube-sentinel-cli-'));
  temporaryDirectories.push(directory);
  return directory;
}

const receivers: Receiver[] = [];
async function serve(args: string[], env: Record<string, string> = {}): Promise<Receiver> {
  const receiver = await startReceiver(args, env);
  receivers.push(receiver);
  return receiver;
}

before(() => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first (npm test does)`);
});

after(async () => {
  // A failed assertion must not leave a server running or temp files behind.
  await Promise.all(receivers.map((receiver) => receiver.stop('SIGKILL')));
  await Promise.all(temporaryDirectories.map((directory) => rm(directory, { recursive: true, force: true })));
});

describe('kube-sentinel CLI', () => {
  describe('usage', () => {
    const commands = ['serve', 'validate', 'explain', 'test'];
    // The settings README.md documents: each a flag and an environment variable.
    const settings: [flag: string, env: string][] = [
      ['--port', 'PORT'],
      ['--host', 'HOST'],
      ['--rules', 'KUBE_SENTINEL_RULES'],
      ['--redis-url', 'REDIS_URL'],
      ['--kubeconfig', 'KUBECONFIG'],
      ['--dry-run', 'KUBE_SENTINEL_DRY_RUN'],
      ['--auth-token', 'KUBE_SENTINEL_AUTH_TOKEN'],
      ['--auth-token-file', 'KUBE_SENTINEL_AUTH_TOKEN_FILE'],
      ['--workflow-namespace', 'KUBE_SENTINEL_WORKFLOW_NAMESPACE'],
      ['--workflow-service-account', 'KUBE_SENTINEL_WORKFLOW_SERVICE_ACCOUNT'],
      ['--log-level', 'LOG_LEVEL'],
      ['--cooldown-store-failure', 'KUBE_SENTINEL_COOLDOWN_STORE_FAILURE'],
      ['--max-workflows-per-minute', 'KUBE_SENTINEL_MAX_WORKFLOWS_PER_MINUTE'],
      ['--submit-timeout', 'KUBE_SENTINEL_SUBMIT_TIMEOUT'],
      ['--pending-lease', 'KUBE_SENTINEL_PENDING_LEASE'],
      ['--body-limit', 'KUBE_SENTINEL_BODY_LIMIT'],
    ];

    function assertUsage(text: string): void {
      assert.match(text, /^Usage: kube-sentinel <command>/m);
      for (const command of commands)
        assert.match(text, new RegExp(`^\\s+${command}\\b`, 'm'), `usage lists the ${command} command`);
      for (const [flag, env] of settings) {
        assert.match(
          text,
          new RegExp(`^\\s+${flag}\\b(?! *-).*\\b${env}$`, 'm'),
          `usage lists ${flag} with its variable ${env}`,
        );
      }
    }

    for (const argument of ['--help', 'help']) {
      it(`prints usage with every command and serve flag for "${argument}" and exits 0`, async () => {
        const run = await cli([argument]);
        assert.equal(run.status, 0, printed(run));
        assertUsage(run.stdout);
        assert.equal(run.stderr, '');
      });
    }

    it('prints usage and exits 2 when no command is given', async () => {
      const run = await cli([]);
      assert.equal(run.status, 2, printed(run));
      assertUsage(run.stdout + run.stderr);
    });

    it('names an unknown command on one line and exits 2', async () => {
      const run = await cli(['frobnicate']);
      assert.equal(run.status, 2, printed(run));
      assert.equal(lines(run.stderr).length, 1, printed(run));
      assert.match(run.stderr, /unknown command "frobnicate"/);
      assert.equal(run.stdout, '');
    });
  });

  describe('a bad setting', { concurrency: true }, () => {
    // Each case keeps the server on loopback with a free port, so if the check is missing the
    // server starts harmlessly and the command is killed as hung (status null) instead of exiting 2.
    const safe = ['--host', '127.0.0.1', '--port', '0'];
    const kubeDir = mkdtempSync(join(tmpdir(), 'ks-cli-kube-'));
    const kubeconfigWithoutUser = join(kubeDir, 'no-user');
    writeFileSync(
      kubeconfigWithoutUser,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\ncontexts: [{name: x, context: {cluster: c, user: missing}}]\ncurrent-context: x\n',
    );
    const notYaml = join(kubeDir, 'not-yaml');
    writeFileSync(notYaml, 'clusters: [unclosed\n');
    const kubeconfigFile = (name: string, text: string): string => {
      writeFileSync(join(kubeDir, name), text);
      return join(kubeDir, name);
    };
    const noCurrentContext = kubeconfigFile(
      'no-current-context',
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\ncontexts: [{name: x, context: {cluster: c}}]\n',
    );
    const badServer = kubeconfigFile(
      'bad-server',
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "127.0.0.1:8001"}}]\ncontexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n',
    );
    const cases: { what: string; args: string[]; env?: Record<string, string>; names: RegExp }[] = [
      { what: 'serve --port abc', args: ['--host', '127.0.0.1', '--port', 'abc'], names: /--port\b.*abc/ },
      { what: 'serve --port 70000', args: ['--host', '127.0.0.1', '--port', '70000'], names: /--port\b.*70000/ },
      {
        what: 'PORT=abc in the environment',
        args: ['--host', '127.0.0.1'],
        env: { PORT: 'abc' },
        names: /\bPORT\b.*abc/,
      },
      { what: 'serve --log-level loud', args: [...safe, '--log-level', 'loud'], names: /--log-level\b.*loud/ },
      {
        what: 'serve --cooldown-store-failure maybe',
        args: [...safe, '--cooldown-store-failure', 'maybe'],
        names: /--cooldown-store-failure\b.*maybe/,
      },
      {
        what: 'serve --max-workflows-per-minute -1',
        args: [...safe, '--max-workflows-per-minute', '-1'],
        names: /--max-workflows-per-minute\b.*-1/,
      },
      {
        what: 'serve --submit-timeout 10 (no unit)',
        args: [...safe, '--submit-timeout', '10'],
        names: /--submit-timeout\b.*"10"/,
      },
      {
        what: 'serve --redis-url localhost:6379',
        args: [...safe, '--redis-url', 'localhost:6379'],
        names: /--redis-url\b.*localhost:6379/,
      },
      {
        what: 'serve --workflow-namespace Bad_NS',
        args: [...safe, '--workflow-namespace', 'Bad_NS'],
        names: /--workflow-namespace\b.*Bad_NS/,
      },
      {
        what: 'serve --auth-token-file /nonexistent',
        args: [...safe, '--auth-token-file', '/nonexistent'],
        names: /--auth-token-file\b.*\/nonexistent/,
      },
      {
        what: 'serve --kubeconfig /nonexistent',
        args: [...safe, '--kubeconfig', '/nonexistent'],
        names: /--kubeconfig\b.*\/nonexistent/,
      },
      {
        what: 'serve --kubeconfig with a context that names a user it does not define',
        args: [...safe, '--kubeconfig', kubeconfigWithoutUser],
        names: /--kubeconfig\b.*no-user: .*user "missing"/,
      },
      {
        what: 'serve --kubeconfig that is not YAML',
        args: [...safe, '--kubeconfig', notYaml],
        names: /--kubeconfig\b.*not-yaml: not YAML/,
      },
      {
        what: 'serve --kubeconfig that cannot be read (a directory)',
        args: [...safe, '--kubeconfig', kubeDir],
        names: /--kubeconfig\b.*cannot read/,
      },
      {
        what: 'serve --kubeconfig whose server is not a URL',
        args: [...safe, '--kubeconfig', badServer],
        names: /--kubeconfig\b.*bad-server: .*server "127\.0\.0\.1:8001"/,
      },
      {
        what: 'KUBECONFIG in the environment without a current context',
        args: safe,
        env: { KUBECONFIG: noCurrentContext },
        names: /no-current-context: no current-context/,
      },
      { what: 'serve --bogus-flag', args: [...safe, '--bogus-flag'], names: /--bogus-flag/ },
    ];
    for (const { what, args, env, names } of cases) {
      it(`refuses ${what} with exit 2 and one line on stderr naming the setting`, async () => {
        const run = await cli(['serve', ...args], env);
        assert.equal(run.status, 2, printed(run));
        assert.equal(lines(run.stderr).length, 1, `exactly one line on stderr\n${printed(run)}`);
        assert.match(run.stderr, names);
        assert.doesNotMatch(run.stdout, /listening/, printed(run));
      });
    }

    it('is overridden by a good flag: PORT=abc with --port 0 starts and stops cleanly', async () => {
      const receiver = await serve(['--port', '0'], { PORT: 'abc' });
      const health = await fetch(`${receiver.url}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(await receiver.stop('SIGTERM'), 0, receiver.process.output());
    });
  });

  describe('validate', () => {
    it('accepts the default rules, says how many there are and exits 0', async () => {
      const ruleFiles = readdirSync(join(REPO_ROOT, 'rules')).filter((name) => /\.ya?ml$/.test(name));
      const expected = ruleFiles.reduce((count, name) => {
        const doc = parse(readFileSync(join(REPO_ROOT, 'rules', name), 'utf8')) as { rules?: unknown[] } | null;
        return count + (doc?.rules?.length ?? 0);
      }, 0);
      assert.ok(expected > 0, 'rules/ holds rules');
      const run = await cli(['validate', 'rules/']);
      assert.equal(run.status, 0, printed(run));
      assert.match(run.stdout, new RegExp(`\\b${expected} rules\\b`));
    });

    it('reports every problem of an invalid file as file:line: message and exits 1', async () => {
      const file = 'test/fixtures/cli/invalid-rules.yaml';
      const run = await cli(['validate', file]);
      assert.equal(run.status, 1, printed(run));
      const problems = lines(run.stderr);
      for (const problem of problems)
        assert.match(problem, new RegExp(`^${file}:\\d+: \\S`), 'every problem is file:line: message');
      const at = (line: number, pattern: RegExp) =>
        assert.ok(
          problems.some((problem) => problem.startsWith(`${file}:${line}: `) && pattern.test(problem)),
          `expected a problem at ${file}:${line} matching ${pattern}\n${printed(run)}`,
        );
      at(6, /RE2/); // (?<=x): lookbehind is not RE2
      at(16, /unknown field "priorty"/);
      at(25, /priority "P7"/);
      assert.equal(run.stdout, '');
    });

    it('says clearly that a path does not exist and exits 1', async () => {
      const run = await cli(['validate', '/nonexistent']);
      assert.equal(run.status, 1, printed(run));
      assert.match(run.stderr, /\/nonexistent: no such file or directory/);
    });
  });

  describe('serve with invalid rules', () => {
    it('exits 1 with the file:line problems and never listens', async () => {
      const file = fixture('invalid-rules.yaml');
      const run = await cli(['serve', '--host', '127.0.0.1', '--port', '0', '--rules', file]);
      assert.equal(run.status, 1, printed(run));
      for (const line of [6, 16, 25])
        assert.ok(run.stderr.includes(`${file}:${line}: `), `names ${file}:${line}\n${printed(run)}`);
      assert.doesNotMatch(run.stdout + run.stderr, /listening/);
    });
  });

  describe('explain', () => {
    it('explains an Alertmanager webhook body with the default rules: rule, dry_run, cooldown key and the whole Workflow', async () => {
      const run = await cli(['explain', '--alert', fixture('webhook-crashloop.json')]);
      assert.equal(run.status, 0, printed(run));
      const { alerts } = parse(run.stdout) as { alerts: ExplainedAlert[] };
      assert.equal(alerts.length, 1);
      const [alert] = alerts as [ExplainedAlert];
      assert.deepEqual(alert.alert, {
        status: 'firing',
        labels: {
          alertname: 'KubePodCrashLooping',
          namespace: 'shop',
          pod: 'checkout-7d9f8b6c5-x2x9k',
          container: 'checkout',
        },
        annotations: { description: 'Pod shop/checkout-7d9f8b6c5-x2x9k is in CrashLoopBackOff' },
        startsAt: '2026-01-01T00:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus.monitoring.svc:9090/graph',
      });
      assert.equal(alert.decision.rule, 'general-diagnostics');
      assert.equal(alert.decision.priority, 'P3');
      assert.equal(alert.decision.outcome, 'dry_run');
      assert.equal(alert.decision.cooldownKey, 'general-diagnostics:shop/checkout');
      assert.equal(alert.manifest?.apiVersion, 'argoproj.io/v1alpha1');
      assert.equal(alert.manifest?.kind, 'Workflow');
      assert.match(alert.manifest?.metadata.name ?? '', /^kube-sentinel-general-diagnostics-[0-9a-f]+$/);
      assert.equal(alert.manifest?.metadata.namespace, 'argo');
      assert.equal(alert.manifest?.metadata.labels['kube-sentinel.io/rule'], 'general-diagnostics');
      assert.equal(alert.manifest?.spec.workflowTemplateRef?.name, 'diagnose-pod');
      assert.deepEqual(parametersOf(alert), {
        namespace: 'shop',
        pod: 'checkout-7d9f8b6c5-x2x9k',
        container: 'checkout',
        alertname: 'KubePodCrashLooping',
        priority: 'P3',
        rule: 'general-diagnostics',
      });
    });

    it('explains a JSON array of v2 alerts with the default rules', async () => {
      const run = await cli(['explain', '--alert', fixture('v2-oom.json')]);
      assert.equal(run.status, 0, printed(run));
      const { alerts } = parse(run.stdout) as { alerts: ExplainedAlert[] };
      assert.equal(alerts.length, 1);
      const [alert] = alerts as [ExplainedAlert];
      assert.equal(alert.decision.rule, 'oom-investigation');
      assert.equal(alert.decision.outcome, 'dry_run');
      assert.equal(alert.decision.cooldownKey, 'oom-investigation:shop/cart');
      assert.equal(alert.manifest?.kind, 'Workflow');
      assert.equal(alert.manifest?.spec.workflowTemplateRef?.name, 'diagnose-memory');
      assert.deepEqual(parametersOf(alert), {
        namespace: 'shop',
        pod: 'cart-5c8d7f9b4-x7kq2',
        container: 'cart',
        alertname: 'ContainerOOM',
        priority: 'P2',
        rule: 'oom-investigation',
      });
    });

    it('explains v2 alerts carrying startsAt and endsAt, as Prometheus and the Loki ruler send them', async () => {
      const run = await cli(['explain', '--alert', fixture('v2-oom-timestamped.json')]);
      assert.equal(run.status, 0, printed(run));
      const { alerts } = parse(run.stdout) as { alerts: ExplainedAlert[] };
      assert.equal(alerts[0]?.decision.rule, 'oom-investigation');
      assert.equal(alerts[0]?.decision.outcome, 'dry_run');
    });

    it('decides through the serving stages: an excluded namespace, a resolved alert and a hostile label get what serve gives them, and no Workflow', async () => {
      const file = join(await temporaryDirectory(), 'alerts.json');
      const crashLooping = (labels: Record<string, string>, extra: Record<string, string> = {}) => ({
        labels: { alertname: 'KubePodCrashLooping', ...labels },
        annotations: { description: 'Back-off restarting failed container: CrashLoopBackOff' },
        ...extra,
      });
      writeFileSync(
        file,
        JSON.stringify([
          crashLooping({ namespace: 'kube-system', pod: 'coredns-5d78c9869d-abcde' }),
          crashLooping({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k' }, { endsAt: '2020-01-01T00:00:00Z' }),
          crashLooping({ namespace: 'shop', pod: 'x;rm -rf /' }),
        ]),
      );
      const run = await cli(['explain', '--alert', file]);
      assert.equal(run.status, 0, printed(run));
      const { alerts } = parse(run.stdout) as { alerts: ExplainedAlert[] };
      assert.deepEqual(
        alerts.map((alert) => [alert.decision.outcome, alert.decision.rule, alert.manifest]),
        [
          ['excluded', null, undefined],
          ['resolved', 'general-diagnostics', undefined],
          ['invalid_target', 'general-diagnostics', undefined],
        ],
      );
      // Beside each decision, the alert as read: a v2 alert whose endsAt has passed is resolved.
      assert.deepEqual(
        alerts.map((alert) => [alert.alert.status, alert.alert.labels.pod, alert.alert.endsAt]),
        [
          ['firing', 'coredns-5d78c9869d-abcde', undefined],
          ['resolved', 'checkout-7d9f8b6c5-x2x9k', '2020-01-01T00:00:00Z'],
          ['firing', 'x;rm -rf /', undefined],
        ],
      );
    });

    it('explains one alert on its own, as copied out of a webhook, dropping __proto__ and constructor.prototype keys as serve does', async () => {
      const file = join(await temporaryDirectory(), 'alert.json');
      writeFileSync(
        file,
        '{"status":"firing","__proto__":{"polluted":"yes"},"labels":{"__proto__":{"alertname":"X"},' +
          '"constructor":{"prototype":{"polluted":"yes"}},"alertname":"KubePodCrashLooping","namespace":"shop",' +
          '"pod":"checkout-7d9f8b6c5-x2x9k"},"annotations":{"description":"Back-off restarting failed container: CrashLoopBackOff"}}',
      );
      const run = await cli(['explain', '--alert', file]);
      assert.equal(run.status, 0, printed(run));
      const { alerts } = parse(run.stdout) as { alerts: ExplainedAlert[] };
      assert.equal(alerts.length, 1);
      assert.deepEqual(alerts[0]?.alert.labels, {
        alertname: 'KubePodCrashLooping',
        namespace: 'shop',
        pod: 'checkout-7d9f8b6c5-x2x9k',
      });
      assert.equal(alerts[0]?.decision.rule, 'general-diagnostics');
      assert.equal(alerts[0]?.decision.outcome, 'dry_run');
      assert.equal(alerts[0]?.manifest?.kind, 'Workflow');
    });

    it('exits 1 naming where one alert is wrong', async () => {
      const file = join(await temporaryDirectory(), 'alert.json');
      writeFileSync(file, JSON.stringify({ labels: { alertname: 'X', pod: 5 } }));
      const run = await cli(['explain', '--alert', file]);
      assert.equal(run.status, 1, printed(run));
      assert.ok(run.stderr.includes(file), printed(run));
      assert.match(run.stderr, /at labels\.pod: expected string/);
      assert.equal(run.stdout, '');
    });

    it('exits 2 with its usage when --alert is missing', async () => {
      const run = await cli(['explain']);
      assert.equal(run.status, 2, printed(run));
      assert.equal(lines(run.stderr).length, 1, printed(run));
      assert.match(run.stderr, /--alert FILE/);
    });

    it('exits 1 naming the file when it is not JSON', async () => {
      const file = fixture('not-json.yaml');
      const run = await cli(['explain', '--alert', file]);
      assert.equal(run.status, 1, printed(run));
      assert.ok(run.stderr.includes(file), printed(run));
      assert.match(run.stderr, /JSON/);
      assert.equal(run.stdout, '');
    });

    it('exits 1 naming the file when its JSON is neither a webhook body nor v2 alerts', async () => {
      const file = fixture('not-an-alert.json');
      const run = await cli(['explain', '--alert', file]);
      assert.equal(run.status, 1, printed(run));
      assert.ok(run.stderr.includes(file), printed(run));
      assert.match(run.stderr, /webhook/i);
      assert.match(run.stderr, /v2/);
      assert.equal(run.stdout, '');
    });
  });

  describe('test', () => {
    it('passes every unit test of the default rules and exits 0', async () => {
      const file = 'rules/tests/default.test.yaml';
      const doc = parse(readFileSync(join(REPO_ROOT, file), 'utf8')) as { tests: unknown[] };
      assert.ok(doc.tests.length > 0);
      const run = await cli(['test', file]);
      assert.equal(run.status, 0, printed(run));
      assert.equal(run.stdout, `${doc.tests.length} passed, 0 failed\n`);
    });

    it('expects what serve decides: no Workflow for an excluded namespace or a resolved alert', async () => {
      const directory = await temporaryDirectory();
      const file = join(directory, 'serving.test.yaml');
      writeFileSync(
        file,
        [
          `rules: ${JSON.stringify(join(REPO_ROOT, 'rules'))}`,
          'tests:',
          '  - name: an excluded namespace has no template',
          '    alerts:',
          '      - labels: {alertname: KubePodCrashLooping, namespace: kube-system, pod: coredns-0}',
          '        annotations: {description: crash looping}',
          '        expect: {outcome: excluded, template: diagnose-pod}',
          '  - name: a resolved alert is resolved',
          '    alerts:',
          '      - labels: {alertname: KubePodCrashLooping, namespace: shop, pod: api-0}',
          '        annotations: {description: crash looping}',
          '        status: resolved',
          '        expect: {rule: general-diagnostics, outcome: resolved}',
        ].join('\n'),
      );
      const run = await cli(['test', file]);
      assert.equal(run.status, 1, printed(run));
      assert.equal(run.stdout, '1 passed, 1 failed\n');
      assert.match(
        run.stderr,
        /"an excluded namespace has no template": alert 1: expected template "diagnose-pod", got undefined/,
      );
    });

    it('expresses an approval gate: an approval rule gives awaiting_approval and holds its key until the approval times out', async () => {
      const directory = await temporaryDirectory();
      writeFileSync(
        join(directory, 'rules.yaml'),
        [
          'rules:',
          '  - name: drain-node',
          '    match: {pattern: NodeNotReady}',
          '    priority: P1',
          '    remediation:',
          '      action: trigger-argo-workflow',
          '      params: {workflow_template: drain-node}',
          '      cooldown: 5m',
          '      approval: required',
          '      approval_timeout: 30m',
        ].join('\n'),
      );
      const file = join(directory, 'approval.test.yaml');
      writeFileSync(
        file,
        [
          'rules: rules.yaml',
          'tests:',
          '  - name: a person approves a drain',
          '    alerts:',
          '      - labels: {alertname: NodeNotReady, namespace: infra, pod: node-agent-0}',
          '        expect: {rule: drain-node, outcome: awaiting_approval, template: drain-node}',
          '      - labels: {alertname: NodeNotReady, namespace: infra, pod: node-agent-0}',
          '        at: 20m',
          '        expect: {outcome: cooldown}',
          '      - labels: {alertname: NodeNotReady, namespace: infra, pod: node-agent-0}',
          '        at: 31m',
          '        expect: {outcome: awaiting_approval}',
        ].join('\n'),
      );
      const run = await cli(['test', file]);
      assert.equal(run.status, 0, printed(run));
      assert.equal(run.stdout, '1 passed, 0 failed\n');
    });

    it('fails a wrong expectation naming the test, the alert and expected against got, and exits 1', async () => {
      const file = fixture('wrong-expectation.test.yaml');
      const run = await cli(['test', file]);
      assert.equal(run.status, 1, printed(run));
      assert.equal(run.stdout, '1 passed, 1 failed\n');
      const [message, ...rest] = lines(run.stderr);
      assert.deepEqual(rest, [], printed(run));
      assert.ok(message?.includes(file), printed(run));
      assert.ok(message?.includes('a refused connection is wrongly expected to get a memory diagnosis'), printed(run));
      assert.match(message ?? '', /alert 2\b/);
      assert.match(message ?? '', /expected rule "oom-investigation", got "network-diagnostics"/);
    });
  });

  describe('pause', () => {
    it('refuses, with exit 2 and without asking any receiver, a pause without a selector unless --all, and one that never ends', async () => {
      const server = ['--server', 'http://127.0.0.1:1'];
      const [noSelector, noEnd] = await Promise.all([
        cli(['pause', '--for', '2h', '--reason', 'deploy', ...server]),
        cli(['pause', '--namespace', 'shop', '--reason', 'deploy', ...server]),
      ]);
      assert.equal(noSelector.status, 2, printed(noSelector));
      assert.match(noSelector.stderr, /needs --namespace, --rule, --workload or --cluster; --all pauses every alert/);
      assert.equal(noEnd.status, 2, printed(noEnd));
      assert.match(noEnd.stderr, /--for DURATION .* --until TIME/);
    });
  });

  describe('serve', () => {
    async function ruleNames(url: string, headers: Record<string, string> = {}): Promise<string[]> {
      const res = await fetch(`${url}/v1/rules`, { headers });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { rules: { name: string }[] };
      return body.rules.map((rule) => rule.name);
    }

    async function postWebhook(url: string, headers: Record<string, string> = {}): Promise<Response> {
      return fetch(`${url}/webhook/alertmanager`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: await readFile(fixture('webhook-crashloop.json'), 'utf8'),
      });
    }

    it('decides alerts, keeps its rules through an invalid edit, picks up a valid one, and exits 0 on SIGTERM', async () => {
      const directory = await temporaryDirectory();
      const rules = join(directory, 'rules.yaml');
      await copyFile(fixture('one-rule.yaml'), rules);
      const receiver = await serve(['--port', '0', '--rules', rules]);

      const res = await postWebhook(receiver.url);
      assert.equal(res.status, 200);
      const { decisions } = (await res.json()) as { decisions: { rule: string; outcome: string }[] };
      assert.equal(decisions.length, 1);
      assert.equal(decisions[0]?.rule, 'crash-diagnosis');
      assert.equal(decisions[0]?.outcome, 'dry_run');

      await writeFile(rules, await readFile(fixture('invalid-rules.yaml')));
      await receiver.process.waitFor(/rules reload failed/);
      assert.match(
        receiver.process.output(),
        new RegExp(`${rules.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6: `),
        'the log names file:line',
      );
      assert.deepEqual(await ruleNames(receiver.url), ['crash-diagnosis']);

      await writeFile(rules, await readFile(fixture('one-rule-renamed.yaml')));
      await eventually(
        async () => ((await ruleNames(receiver.url)).includes('crash-diagnosis-v2') ? true : undefined),
        'the renamed rule to load',
      );
      assert.deepEqual(await ruleNames(receiver.url), ['crash-diagnosis-v2']);

      const metrics = await (await fetch(`${receiver.url}/metrics`)).text();
      assert.match(metrics, /^kube_sentinel_rules_reloads_total\{result="failure"\} 1$/m);
      assert.match(metrics, /^kube_sentinel_rules_reloads_total\{result="success"\} 1$/m);

      assert.equal(await receiver.stop('SIGTERM'), 0, receiver.process.output());
      assert.match(receiver.process.output(), /shutting down/);
    });

    it('is paused by kube-sentinel pause, lists it with pauses, and acts again after unpause, with the token from the environment', async () => {
      const receiver = await serve(['--port', '0', '--auth-token', 'pause-t0ken']);
      const client = { KUBE_SENTINEL_SERVER: receiver.url, KUBE_SENTINEL_AUTH_TOKEN: 'pause-t0ken' };
      const authorization = { authorization: 'Bearer pause-t0ken' };
      const outcome = async () =>
        ((await (await postWebhook(receiver.url, authorization)).json()) as { decisions: { outcome: string }[] })
          .decisions[0]?.outcome;

      const refused = await cli([
        'pause',
        '--namespace',
        'shop',
        '--for',
        '2h',
        '--reason',
        'deploy',
        '--by',
        'alice',
        '--server',
        receiver.url,
      ]);
      assert.equal(refused.status, 1, printed(refused));
      assert.match(refused.stderr, /401/, 'without the token the receiver refuses');
      const paused = await cli(
        ['pause', '--namespace', 'shop', '--for', '2h', '--reason', 'deploy', '--by', 'alice', '--json'],
        client,
      );
      assert.equal(paused.status, 0, printed(paused));
      const pause = JSON.parse(paused.stdout) as { id: string; namespace: string; createdBy: string };
      assert.deepEqual([pause.namespace, pause.createdBy], ['shop', 'alice']);
      assert.equal(await outcome(), 'paused');

      const typo = await cli(['pause', '--namespace', 'Shop', '--for', '2h', '--reason', 'deploy'], client);
      assert.equal(typo.status, 1, printed(typo));
      assert.match(typo.stderr, /body\.namespace must be a DNS-1123 label.*\(--namespace\)/);
      const listed = await cli(['pauses'], client);
      assert.equal(listed.status, 0, printed(listed));
      assert.match(listed.stdout, /^ID +SELECTOR +UNTIL +BY +REASON$/m);
      assert.match(listed.stdout, new RegExp(`^${pause.id} +namespace=shop +\\S+ +alice +deploy$`, 'm'));

      const unpaused = await cli(['unpause', pause.id], client);
      assert.equal(unpaused.status, 0, printed(unpaused));
      assert.match(unpaused.stdout, new RegExp(`unpaused namespace=shop \\(id ${pause.id}\\)`));
      assert.equal(await outcome(), 'dry_run');
      const again = await cli(['unpause', pause.id], client);
      assert.equal(again.status, 1, printed(again));
      assert.match(again.stderr, /404 no pause/);
      assert.equal((await cli(['pauses'], client)).stdout, 'no pauses in force\n');
    });

    it('requires the bearer token read from --auth-token-file on ingest, but not on /healthz', async () => {
      const directory = await temporaryDirectory();
      const tokenFile = join(directory, 'token');
      await writeFile(tokenFile, 's3cret-t0ken\n');
      const receiver = await serve(['--port', '0', '--auth-token-file', tokenFile]);

      assert.equal((await postWebhook(receiver.url)).status, 401);
      assert.equal((await postWebhook(receiver.url, { authorization: 'Bearer wrong-token' })).status, 401);
      const authorized = await postWebhook(receiver.url, { authorization: 'Bearer s3cret-t0ken' });
      assert.equal(authorized.status, 200);
      const { decisions } = (await authorized.json()) as { decisions: { outcome: string }[] };
      assert.equal(decisions[0]?.outcome, 'dry_run');
      assert.equal((await fetch(`${receiver.url}/healthz`)).status, 200);

      assert.equal(await receiver.stop('SIGTERM'), 0, receiver.process.output());
    });
  });
});
