/**
 * SPEC §12 end to end: the built receiver with a real Redis and the fake Kubernetes API (which
 * plays the Argo controller), its page driven in Debian's headless Chromium. A remediation the
 * controller fails shows as failed with its link into the Argo UI, an approval waits at the top,
 * and the page logs no error. Screenshots go to test-output/page/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { launchChromium, outputPath } from '../support/browser.js';
import { crashLoopAlert, type DecisionView, type PostableAlert, post, writeRules } from '../support/cluster.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { eventually } from '../support/processes.js';
import { type Receiver, startReceiver } from '../support/receiver.js';
import { type RedisServer, startRedis } from '../support/redis-server.js';

const TOKEN = 'page-token';
const BASIC = { username: 'oncall', password: 'pager-duty' };
const KUBE_TOKEN = 'kube-token';
const ARGO_UI = 'https://argo.example.com';
const BOUNDED = { timeout: 90_000 };

const RULES = `
rules:
  - name: crashloop
    match: {pattern: CrashLoop}
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      cooldown: 10m
  - name: approve-restart
    match: {pattern: NeedsApproval}
    priority: P1
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      cooldown: 10m
      approval: required
  - name: never-matches
    match: {pattern: NothingSendsThis}
    priority: P4
    enabled: false
    remediation:
      action: trigger-argo-workflow
      params: {workflow_name: noop, inline_action: describe}
`;

function alertOf(pattern: string, namespace: string, pod: string): Record<string, unknown> {
  const alert: PostableAlert = crashLoopAlert(
    { alertname: pattern, namespace, pod, container: 'app' },
    { description: pattern },
  );
  return { ...alert, startsAt: new Date().toISOString() };
}

/** What a page logged as an error, and what threw in it. */
function errorsOf(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`page: ${err.message}`));
  return errors;
}

describe('the page, in headless Chromium, over the built receiver', () => {
  let redis: RedisServer;
  let kube: FakeKube;
  let receiver: Receiver;
  let tokenOnly: Receiver;
  let browser: Browser;
  let failed: DecisionView;
  let waiting: DecisionView;

  before(async () => {
    [redis, kube, browser] = await Promise.all([startRedis(), startFakeKube({ token: KUBE_TOKEN }), launchChromium()]);
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    const { dir, file } = writeRules(RULES);
    const args = [
      '--port',
      '0',
      '--rules',
      file,
      '--redis-url',
      redis.url,
      '--kubeconfig',
      writeKubeconfig(dir, kube.url, KUBE_TOKEN),
      '--argo-ui-url',
      ARGO_UI,
    ];
    [receiver, tokenOnly] = await Promise.all([
      startReceiver(args, {
        KUBE_SENTINEL_AUTH_TOKEN: TOKEN,
        KUBE_SENTINEL_BASIC_AUTH: `${BASIC.username}:${BASIC.password}`,
        HOSTNAME: 'replica-a',
      }),
      startReceiver(args, { KUBE_SENTINEL_AUTH_TOKEN: TOKEN, HOSTNAME: 'replica-b' }),
    ]);

    // A remediation the controller fails, and one that waits for a person.
    const first = await post(
      receiver.url,
      '/api/v2/alerts',
      [alertOf('CrashLoopBackOff', 'shop', 'checkout-7d9f8b6c5-x2x9k')],
      TOKEN,
    );
    failed = first.decisions[0] as DecisionView;
    assert.equal(failed.outcome, 'submitted', JSON.stringify(first.decisions));
    const name = failed.workflow?.name ?? '';
    kube.setPhase('argo', name, 'Running');
    kube.setPhase('argo', name, 'Failed', { message: 'child "restart" failed: exit code 1' });
    const second = await post(receiver.url, '/api/v2/alerts', [alertOf('NeedsApproval', 'billing', 'ledger-0')], TOKEN);
    waiting = second.decisions[0] as DecisionView;
    assert.equal(waiting.outcome, 'awaiting_approval', JSON.stringify(second.decisions));
    // The watcher records both and opens both escalations on its own time: the page is read after.
    const listed = async (path: string, field: string) => {
      const res = await fetch(`${receiver.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return ((await res.json()) as Record<string, { state?: string }[]>)[field] ?? [];
    };
    await eventually(async () => {
      const remediations = await listed('/v1/remediations', 'remediations');
      const states = remediations.map((remediation) => remediation.state).sort();
      const escalations = await listed('/v1/escalations', 'escalations');
      return (states.join() === 'awaiting_approval,failed' && escalations.length === 2) || undefined;
    }, 'both remediations recorded and both escalations open');
  });

  after(async () => {
    await browser?.close();
    await Promise.all([receiver?.stop(), tokenOnly?.stop()]);
    await kube?.close();
    await redis?.stop();
  });

  const open = async (context: BrowserContext, url: string): Promise<{ page: Page; errors: string[] }> => {
    const page = await context.newPage();
    const errors = errorsOf(page);
    const answer = await page.goto(url);
    assert.equal(answer?.status(), 200);
    await page.waitForSelector('body[data-loaded="true"]');
    return { page, errors };
  };

  it(
    'shows the failed remediation with its Workflow link, the approval at the top, and logs no error',
    BOUNDED,
    async () => {
      const context = await browser.newContext({ httpCredentials: BASIC, viewport: { width: 1280, height: 900 } });
      try {
        const { page, errors } = await open(context, `${receiver.url}/`);
        const failedName = failed.workflow?.name ?? '';
        const waitingName = waiting.workflow?.name ?? '';

        // The approval is the page's first section, and the remediations list it first.
        const approvals = page.locator('#approvals');
        assert.equal(await approvals.isVisible(), true);
        const firstSection = await page.locator('main > section:not([hidden])').first().getAttribute('id');
        assert.equal(firstSection, 'approvals');
        assert.match(await approvals.innerText(), new RegExp(`awaiting approval[\\s\\S]*${waitingName}`));
        assert.match(await approvals.innerText(), new RegExp(`argo resume -n argo ${waitingName}`));
        const rows = page.locator('#remediations tbody tr');
        assert.equal(await rows.count(), 2);
        assert.match(await rows.first().innerText(), /awaiting approval/);

        // The failure: its badge says so in words, with Argo's message and the link into the Argo UI.
        const failedRow = page.locator('#remediations tbody tr', { hasText: failedName });
        assert.match(await failedRow.innerText(), /✗\s*failed/);
        assert.match(await failedRow.innerText(), /child "restart" failed: exit code 1/);
        assert.match(await failedRow.innerText(), /shop\/checkout-7d9f8b6c5-x2x9k/);
        const link = failedRow.getByRole('link', { name: `argo/${failedName}` });
        assert.equal(await link.getAttribute('href'), `${ARGO_UI}/workflows/argo/${failedName}`);

        // Escalations, rules and the chart, each from its route.
        const escalations = await page.locator('#escalations').innerText();
        assert.match(escalations, /KubeSentinelRemediationFailed/);
        assert.match(escalations, /KubeSentinelApprovalRequired/);
        const crashloopRule = page.locator('#rules tbody tr', { hasText: 'crashloop' });
        assert.match(await crashloopRule.innerText(), /template diagnose-pod[\s\S]*10m[\s\S]*yes[\s\S]*ago[\s\S]*0%/);
        assert.match(
          await page.locator('#rules tbody tr', { hasText: 'never-matches' }).innerText(),
          /no \(disabled\)/,
        );
        assert.equal((await page.locator('#activity svg[role="img"] rect').count()) > 0, true);
        assert.match(await page.locator('#activity .legend').innerText(), /submitted: 1[\s\S]*awaiting approval: 1/);

        // Structure a screen reader and a keyboard rely on.
        assert.deepEqual(await page.locator('h1').allInnerTexts(), ['Kube Sentinel']);
        assert.deepEqual(await page.locator('main h2:visible').allInnerTexts(), [
          'Awaiting approval',
          'Remediations',
          'Escalations',
          'Pauses',
          'Cooldowns',
          'Rules',
          'Last 24 hours',
        ]);
        assert.match(await page.locator('#pauses').innerText(), /kube-sentinel pause --namespace/);
        await page.screenshot({ path: outputPath('page', 'remediations.png'), fullPage: true });
        await page.keyboard.press('Tab');
        assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
        await page.keyboard.press('Enter');
        assert.equal(await page.evaluate(() => document.activeElement?.id), 'content');
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    },
  );

  it('fits a phone: no sideways scrolling, every cell labelled by its column', BOUNDED, async () => {
    const context = await browser.newContext({
      httpCredentials: BASIC,
      viewport: { width: 375, height: 812 },
      isMobile: true,
    });
    try {
      const { page, errors } = await open(context, `${receiver.url}/`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${overflow}px wider than the screen`);
      const cell = page.locator('#remediations tbody tr').first().locator('td').first();
      assert.equal(await cell.getAttribute('data-label'), 'State');
      await page.screenshot({ path: outputPath('page', 'phone.png'), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  it('asks for the bearer token once and keeps it for the tab', BOUNDED, async () => {
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    try {
      const page = await context.newPage();
      const answer = await page.goto(`${tokenOnly.url}/`);
      assert.equal(answer?.status(), 401);
      await page.waitForSelector('#sign-in:not([hidden])');
      assert.equal(await page.locator('#content').isHidden(), true);
      await page.getByLabel('Bearer token').fill('not-the-token');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#sign-in-hint:has-text("refused")');
      await page.getByLabel('Bearer token').fill(TOKEN);
      await page.keyboard.press('Enter');
      await page.waitForSelector('body[data-loaded="true"]');
      assert.match(await page.locator('#remediations').innerText(), new RegExp(failed.workflow?.name ?? '-'));
      // A reload of the same tab reads with the kept token; the document itself still needs credentials.
      await page.evaluate(() => document.body.removeAttribute('data-loaded'));
      await page.reload();
      await page.waitForSelector('body[data-loaded="true"]');
      assert.equal(await page.locator('#sign-in').isHidden(), true);
      // Forgetting it signs the tab out.
      await page.getByRole('button', { name: 'Forget token' }).click();
      await page.waitForSelector('#sign-in:not([hidden])');
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    } finally {
      await context.close();
    }
  });

  it(
    'keeps what a person opened, every approval, and what it showed when the receiver stops answering',
    BOUNDED,
    async () => {
      const context = await browser.newContext({ httpCredentials: BASIC, viewport: { width: 1280, height: 900 } });
      try {
        const { page } = await open(context, `${receiver.url}/`);
        const reads = async () => Number(await page.locator('body').getAttribute('data-reads'));
        const refreshed = async () => {
          const before = await reads();
          await page.getByRole('button', { name: 'Refresh now' }).click();
          await page.waitForFunction((count) => Number(document.body.dataset.reads) > count, before);
        };

        // A refresh with the same data leaves the opened table of figures open.
        await page.getByText('The figures as a table').click();
        await refreshed();
        assert.equal(await page.locator('#activity details').getAttribute('open'), '');

        // 200 newer remediations: the approval is still first, and the page says the list is cut.
        const newer = Array.from({ length: 200 }, (_, i) => ({
          workflow: `argo/kube-sentinel-crashloop-${String(i).padStart(10, '0')}`,
          rule: 'crashloop',
          cooldownKey: `crashloop:shop/app-${i}`,
          target: `shop/app-${i}-0`,
          state: 'succeeded',
          submittedAt: new Date().toISOString(),
          finishedAt: new Date().toISOString(),
        }));
        await page.route('**/v1/remediations?limit=200', (route) => route.fulfill({ json: { remediations: newer } }));
        await refreshed();
        assert.match(await page.locator('#remediations tbody tr').first().innerText(), /awaiting approval/);
        assert.equal(await page.locator('#remediations tbody tr').count(), 201);
        assert.match(
          await page.locator('#remediations').innerText(),
          /The newest 200 remediations, and every one awaiting approval/,
        );
        assert.match(await page.locator('#approvals').innerText(), new RegExp(waiting.workflow?.name ?? '-'));
        await page.unroute('**/v1/remediations?limit=200');
        await refreshed();

        // The receiver out of reach: what was shown stays, marked as old.
        await page.route(/\/(v1|readyz)/, (route) => route.abort('connectionrefused'));
        await refreshed();
        assert.match(
          await page.locator('#last-update').innerText(),
          /Could not reach the receiver .*Showing what it said at/,
        );
        assert.match(await page.locator('#readiness').innerText(), /Not answering/);
        assert.match(await page.locator('#remediations').innerText(), new RegExp(failed.workflow?.name ?? '-'));
        await page.unroute(/\/(v1|readyz)/);
        await refreshed();
        assert.match(await page.locator('#last-update').innerText(), /^Updated /);
        assert.match(await page.locator('#readiness').innerText(), /Ready/);
      } finally {
        await context.close();
      }
    },
  );

  it('answers 401 for the page and for its data without credentials', async () => {
    for (const path of [
      '/',
      '/v1/remediations',
      '/v1/escalations',
      '/v1/activity',
      '/v1/rules',
      '/v1/pauses',
      '/v1/cooldowns',
    ]) {
      const res = await fetch(`${receiver.url}${path}`);
      assert.equal(res.status, 401, path);
      const body = await res.text();
      assert.doesNotMatch(body, /checkout-7d9f8b6c5/, path);
    }
  });
});
