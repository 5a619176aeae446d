/**
 * Kubeconfigs as kubectl takes them: a `kubectl proxy` one (plain http://, a context without a
 * user) works end to end; credentials that would cross the network unencrypted are warned about
 * once at start; one that cannot work is a setting error at start (exit 2, one line naming the
 * file and the problem), never a `retry` on every alert.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config.js';
import { createKubeSubmitter, KubeconfigError, loadKubeConfig } from '../../src/kube/client.js';
import { createSubmitter } from '../../src/server.js';
import { firing, testApp, webhook } from '../support/app.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeProxyKubeconfig } from '../support/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'ks-kubeconfig-'));
let files = 0;

/** A kubeconfig file with this content (a string as is, anything else as YAML). */
function kubeconfigFile(content: unknown): string {
  files += 1;
  const path = join(dir, `kubeconfig-${files}`);
  writeFileSync(path, typeof content === 'string' ? content : stringify(content));
  return path;
}

/** One cluster, one user, one context; `cluster` and `user` replace the entries' fields. */
function kubeconfig(
  options: { server?: string; cluster?: Record<string, unknown>; user?: Record<string, unknown> | null } = {},
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: options.server ?? 'https://10.0.0.1:6443', ...options.cluster } }],
    users: options.user === null ? [] : [{ name: 'u', user: options.user ?? { token: 'abc' } }],
    contexts: [{ name: 'x', context: { cluster: 'c', ...(options.user === null ? {} : { user: 'u' }) } }],
    'current-context': 'x',
  };
}

describe('a kubectl proxy kubeconfig (plain http://, a context without a user)', () => {
  let kube: FakeKube;
  before(async () => {
    kube = await startFakeKube();
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
  });
  after(() => kube.close());

  it('is accepted, and an alert becomes a Workflow in the cluster', async () => {
    const submitter = await createKubeSubmitter({ kind: 'file', path: writeProxyKubeconfig(dir, kube.url) });
    assert.equal(submitter.target, kube.url);
    const { app } = await testApp({ submitter });
    const res = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: webhook([firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' })]),
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().decisions[0].outcome, 'submitted', res.body);
    assert.equal(kube.workflows.length, 1);
    assert.equal(kube.workflows[0]?.spec.workflowTemplateRef?.name, 'diagnose-pod');
  });
});

describe('credentials for a plain-http server', () => {
  async function warningsFor(path: string): Promise<string[]> {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) > 0 });
    await createSubmitter(loadConfig(['--kubeconfig', path], {}), {}, logger);
    return lines
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter((entry) => entry.level === 40)
      .map((entry) => entry.msg);
  }

  const cases: { what: string; server: string; user?: Record<string, unknown> | null; warns: RegExp | null }[] = [
    { what: 'a token to another host', server: 'http://10.0.0.1:8080', warns: /\btoken\b/ },
    {
      what: 'basic auth to a host name',
      server: 'http://kube.example.com:8080',
      user: { username: 'admin', password: 'pw' },
      warns: /basic auth/,
    },
    {
      what: 'a client certificate to another host',
      server: 'http://10.0.0.1:8080',
      user: { 'client-certificate-data': 'Y2VydA==', 'client-key-data': 'a2V5' },
      warns: /client certificate/,
    },
    { what: 'a token to 127.0.0.1', server: 'http://127.0.0.1:8001', warns: null },
    { what: 'a token to localhost', server: 'http://localhost:8001', warns: null },
    { what: 'a token to [::1]', server: 'http://[::1]:8001', warns: null },
    { what: 'a token over https', server: 'https://10.0.0.1:6443', warns: null },
    { what: 'no user at all', server: 'http://10.0.0.1:8080', user: null, warns: null },
  ];
  for (const { what, server, user, warns } of cases) {
    it(`${warns ? 'warns once' : 'does not warn'} for ${what}`, async () => {
      const path = kubeconfigFile(kubeconfig({ server, ...(user === undefined ? {} : { user }) }));
      const warnings = (await warningsFor(path)).filter((msg) => /clear text/.test(msg));
      if (!warns) {
        assert.deepEqual(warnings, []);
        return;
      }
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, warns);
      assert.ok(warnings[0]!.includes(path), warnings[0]);
      assert.ok(warnings[0]!.includes(new URL(server).host), warnings[0]);
      assert.doesNotMatch(warnings[0]!, /\babc\b|\bpw\b/, 'the credential itself is never logged');
    });
  }
});

describe('an unusable kubeconfig', () => {
  const unreadable = join(dir, 'a-directory');
  mkdirSync(unreadable);
  const cases: { what: string; path: string; names: RegExp }[] = [
    { what: 'unreadable (a directory)', path: unreadable, names: /cannot read/ },
    { what: 'not YAML', path: kubeconfigFile('clusters: [unclosed\n'), names: /not YAML/ },
    { what: 'empty', path: kubeconfigFile(''), names: /empty/ },
    { what: 'YAML but not a mapping', path: kubeconfigFile('- a\n- b\n'), names: /not a kubeconfig/ },
    {
      what: 'without a current context',
      path: kubeconfigFile({ ...kubeconfig(), 'current-context': undefined }),
      names: /no current-context/,
    },
    {
      what: 'whose current context does not exist',
      path: kubeconfigFile({ ...kubeconfig(), 'current-context': 'gone' }),
      names: /current-context "gone"/,
    },
    {
      what: 'whose context names a missing cluster',
      path: kubeconfigFile({ ...kubeconfig(), contexts: [{ name: 'x', context: { cluster: 'nope', user: 'u' } }] }),
      names: /cluster "nope"/,
    },
    {
      what: 'whose context names a missing user',
      path: kubeconfigFile({ ...kubeconfig(), contexts: [{ name: 'x', context: { cluster: 'c', user: 'nobody' } }] }),
      names: /user "nobody"/,
    },
    {
      what: 'whose cluster has no server',
      path: kubeconfigFile({ ...kubeconfig(), clusters: [{ name: 'c', cluster: {} }] }),
      names: /server/,
    },
    {
      what: 'with a server without a scheme',
      path: kubeconfigFile(kubeconfig({ server: '10.0.0.1:6443' })),
      names: /server "10\.0\.0\.1:6443".*https?:\/\//,
    },
    {
      what: 'with a server that is not http(s)',
      path: kubeconfigFile(kubeconfig({ server: 'ftp://10.0.0.1' })),
      names: /server "ftp:\/\/10\.0\.0\.1"/,
    },
    {
      what: 'with a server that is not a URL',
      path: kubeconfigFile(kubeconfig({ server: 'https://kube example:6443' })),
      names: /server "https:\/\/kube example:6443"/,
    },
    {
      what: 'naming a CA file that does not exist',
      path: kubeconfigFile(kubeconfig({ cluster: { 'certificate-authority': '/nonexistent/ca.crt' } })),
      names: /certificate-authority.*\/nonexistent\/ca\.crt/,
    },
    {
      what: 'with a client certificate but no key',
      path: kubeconfigFile(kubeconfig({ user: { 'client-certificate-data': 'Y2VydA==' } })),
      names: /client-key/,
    },
  ];
  for (const { what, path, names } of cases) {
    it(`is refused at start when ${what}: a KubeconfigError (exit 2), one line naming the file`, async () => {
      await assert.rejects(loadKubeConfig({ kind: 'file', path }), (err: unknown) => {
        assert.ok(err instanceof KubeconfigError, String(err));
        assert.equal(err.exitCode, 2);
        assert.doesNotMatch(err.message, /\n/);
        assert.ok(err.message.includes(path), err.message);
        assert.match(err.message, names);
        return true;
      });
    });
  }
});
