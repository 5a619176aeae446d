/**
 * Each stage of the pipeline on its own: a draft in, a richer draft or a decision out. Tiny fakes
 * at the top; the stages are built as createPipeline builds them.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import type { Alert } from '../../src/alert.js';
import { type Decision, decide } from '../../src/decision.js';
import { capturingSubmitter, type WorkflowSubmitter } from '../../src/kube/client.js';
import type { SubmitResult } from '../../src/kube/result.js';
import { buildStage } from '../../src/pipeline/build.js';
import { claimCooldown, type GuardDeps, limitRate, peekCooldown, STORE_UNAVAILABLE } from '../../src/pipeline/guard.js';
import { LocalCooldowns } from '../../src/pipeline/local-cooldowns.js';
import { keyCooldown, matchRule } from '../../src/pipeline/match.js';
import { createMetrics } from '../../src/pipeline/metrics.js';
import { recorder } from '../../src/pipeline/record.js';
import { UnsettledClaims } from '../../src/pipeline/settle.js';
import {
  type Built,
  type Claimed,
  isDecision,
  type Received,
  Stages,
  type Targeted,
} from '../../src/pipeline/stage.js';
import { type SubmitDeps, submitWorkflow } from '../../src/pipeline/submit.js';
import { validateTarget } from '../../src/pipeline/target.js';
import { parseRulesText } from '../../src/rules/parse.js';
import { buildRuleSet } from '../../src/rules/rule-set.js';
import type { RuleSet } from '../../src/rules/types.js';
import { type CooldownStore, StoreUnavailableError } from '../../src/stores/cooldown-store.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';

const RULES = `
excluded_namespaces: [kube-system]
rules:
  - name: crashloop
    match: {pattern: "(?i)crash ?loop"}
    priority: P3
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod, arguments: [{name: why, value: "{{ annotations.description }}"}]}
      cooldown: 10m
  - name: heal-on-resolve
    match: {pattern: "healed"}
    priority: P4
    on_resolved: true
    remediation:
      action: trigger-argo-workflow
      params: {workflow_name: note}
`;

function ruleSet(): RuleSet {
  const parsed = parseRulesText(RULES, 'rules.yaml');
  assert.deepEqual(parsed.errors, []);
  return buildRuleSet(parsed.rules, parsed.excludedNamespaces, ['rules.yaml']);
}

const RULE_SET = ruleSet();

function alert(
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
  status: Alert['status'] = 'firing',
): Alert {
  return { source: 'alertmanager', status, labels, annotations, fingerprint: 'feedfacecafebeef' };
}

const crashloop = (pod = 'checkout-7d9f8b6c5-x2x9k') =>
  alert({ alertname: 'KubePodCrashLooping', namespace: 'shop', pod }, { description: 'crash looping' });

function decided(result: unknown): Decision {
  assert.ok(
    typeof result === 'object' && result !== null && isDecision(result),
    `expected a decision, got ${JSON.stringify(result)}`,
  );
  return result;
}

function draftOf<T extends object>(result: T | Decision | Promise<T | Decision>): T {
  assert.ok(!(result instanceof Promise), 'a synchronous stage');
  assert.ok(!isDecision(result), `expected a draft, got the decision ${JSON.stringify(result)}`);
  return result as T;
}

/** A store whose every call fails as an unreachable Redis does. */
function downStore(): CooldownStore {
  const down = async () => {
    throw new StoreUnavailableError('connection refused');
  };
  return Object.assign(new MemoryCooldownStore(), {
    claim: down,
    commit: down,
    release: down,
    peek: down,
    takeRateSlot: down,
    appendDecision: down,
  });
}

function guardDeps(
  overrides: Partial<Omit<GuardDeps, 'settings'>> & { settings?: Partial<GuardDeps['settings']> } = {},
): SubmitDeps {
  const { settings, ...rest } = overrides;
  return {
    store: new MemoryCooldownStore({ now: () => 1_000_000 }),
    metrics: createMetrics({ defaults: false }),
    logger: pino({ level: 'silent' }),
    now: () => 1_000_000,
    unsettled: new UnsettledClaims(),
    local: new LocalCooldowns(() => 1_000_000),
    ...rest,
    settings: {
      cooldownStoreFailure: 'closed',
      maxWorkflowsPerMinute: 0,
      pendingLeaseMs: 30_000,
      submitTimeoutMs: 1000,
      ...settings,
    },
  };
}

/** A draft as far as the target stage takes it, through the real stages before it. */
function targeted(of: Alert = crashloop()): Targeted {
  return draftOf(validateTarget(draftOf(keyCooldown(draftOf(matchRule({ alert: of, ruleSet: RULE_SET }))))));
}

describe('the match stage', () => {
  const cases: { name: string; alert: Alert; outcome?: Decision['outcome']; rule?: string }[] = [
    { name: 'hands on the rule that matches', alert: crashloop(), rule: 'crashloop' },
    {
      name: 'decides excluded for an excluded namespace, before any rule',
      alert: alert({ namespace: 'kube-system' }, { description: 'crash loop' }),
      outcome: 'excluded',
    },
    {
      name: 'decides no_match when no rule matches',
      alert: alert({ namespace: 'shop' }, { description: 'fine' }),
      outcome: 'no_match',
    },
    {
      name: 'decides resolved for a resolved alert whose rule does not act on it',
      alert: alert({ namespace: 'shop' }, { description: 'crash loop' }, 'resolved'),
      outcome: 'resolved',
    },
    {
      name: "decides no_match for Kube Sentinel's own escalation, even when its text matches a rule",
      alert: alert(
        { alertname: 'KubeSentinelRemediationFailed', namespace: 'shop' },
        { description: 'the remediation of a crash loop failed' },
      ),
      outcome: 'no_match',
    },
    {
      name: 'hands on a resolved alert whose rule says on_resolved',
      alert: alert({ namespace: 'shop' }, { description: 'healed' }, 'resolved'),
      rule: 'heal-on-resolve',
    },
  ];
  for (const { name, alert: given, outcome, rule } of cases) {
    it(name, () => {
      const result = matchRule({ alert: given, ruleSet: RULE_SET });
      if (outcome) assert.equal(decided(result).outcome, outcome);
      else assert.equal(draftOf(result).rule.name, rule);
    });
  }
});

describe('the cooldown key stage', () => {
  it('keys by rule, namespace and workload', () => {
    const matched = draftOf(matchRule({ alert: crashloop(), ruleSet: RULE_SET }));
    assert.equal(draftOf(keyCooldown(matched)).cooldownKey, 'crashloop:shop/checkout');
  });
});

describe('the target stage', () => {
  it('hands on every parameter, substituted from the alert', () => {
    const draft = targeted();
    assert.deepEqual(draft.target, { namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k', container: '' });
    assert.deepEqual(draft.parameters.at(-1), { name: 'why', value: 'crash looping' });
  });

  it('decides invalid_target for a pod label that is no Kubernetes name, naming it', () => {
    const matched = draftOf(keyCooldown(draftOf(matchRule({ alert: crashloop('a;rm -rf /'), ruleSet: RULE_SET }))));
    const decision = decided(validateTarget(matched));
    assert.equal(decision.outcome, 'invalid_target');
    assert.equal(decision.cooldownKey, matched.cooldownKey);
    assert.match(decision.reason ?? '', /label "pod"/);
  });
});

describe('the claim stage', () => {
  let deps: SubmitDeps;
  beforeEach(() => {
    deps = guardDeps();
  });

  it('claims the key and names the Workflow after the claim', async () => {
    const claimed = (await claimCooldown(deps)(targeted())) as Claimed;
    assert.deepEqual(claimed.claim, {
      key: 'crashloop:shop/checkout',
      workflowName: claimed.workflowName,
      ownedByUs: true,
    });
    assert.match(claimed.workflowName, /^kube-sentinel-crashloop-[0-9a-f]{10}$/);
    assert.equal((await deps.store.peek('crashloop:shop/checkout'))?.state, 'pending');
  });

  it('re-uses a pending claim of the same alert with its name, without owning it', async () => {
    const first = (await claimCooldown(deps)(targeted())) as Claimed;
    const again = (await claimCooldown({ ...deps, now: () => 2_000_000 })(targeted())) as Claimed;
    assert.equal(again.workflowName, first.workflowName);
    assert.equal(again.claim?.ownedByUs, false);
  });

  it('decides cooldown for a key another alert holds', async () => {
    await claimCooldown(deps)(targeted());
    const other = targeted({ ...crashloop('checkout-7d9f8b6c5-zz9pq'), fingerprint: '0000000000000001' });
    const decision = decided(await claimCooldown(deps)(other));
    assert.equal(decision.outcome, 'cooldown');
    assert.match(decision.reason ?? '', /is being submitted/);
  });

  it('decides retry when the store does not answer, or goes on unguarded when told to fail open', async () => {
    const closed = decided(await claimCooldown(guardDeps({ store: downStore() }))(targeted()));
    assert.deepEqual([closed.outcome, closed.reason], ['retry', STORE_UNAVAILABLE]);
    const open = (await claimCooldown(guardDeps({ store: downStore(), settings: { cooldownStoreFailure: 'open' } }))(
      targeted(),
    )) as Claimed;
    assert.equal(open.claim, null);
  });
});

describe('the peek stage', () => {
  it('answers as the claim would, and writes nothing', async () => {
    const deps = guardDeps();
    const peeked = (await peekCooldown(deps)(targeted())) as Claimed;
    assert.equal(peeked.claim, null);
    assert.equal(await deps.store.peek('crashloop:shop/checkout'), null);
    await claimCooldown(deps)(targeted());
    await deps.store.commit(
      'crashloop:shop/checkout',
      (await deps.store.peek('crashloop:shop/checkout'))!.workflowName,
      60_000,
    );
    assert.equal(decided(await peekCooldown(deps)(targeted())).outcome, 'cooldown');
  });
});

describe('the rate limit stage', () => {
  it('passes everything with no limit', async () => {
    const draft = (await claimCooldown(guardDeps())(targeted())) as Claimed;
    assert.equal(limitRate(guardDeps())(draft), draft);
  });

  it('decides rate_limited past the budget and gives the claim back', async () => {
    const deps = guardDeps({ settings: { maxWorkflowsPerMinute: 1 } });
    const first = (await claimCooldown(deps)(targeted())) as Claimed;
    assert.deepEqual(await limitRate(deps)(first), { ...first, rateWindow: Math.floor(1_000_000 / 60_000) });
    const other = targeted(alert({ namespace: 'web', pod: 'api-0' }, { description: 'crash loop' }));
    const second = (await claimCooldown(deps)(other)) as Claimed;
    assert.equal(decided(await limitRate(deps)(second)).outcome, 'rate_limited');
    assert.equal(await deps.store.peek(second.cooldownKey), null, 'the refused claim was released');
  });
});

describe('the build stage', () => {
  it('builds the Workflow under the name the claim gave it', async () => {
    const claimed = (await claimCooldown(guardDeps())(targeted())) as Claimed;
    const built = draftOf(buildStage({ workflowNamespace: 'argo' })(claimed));
    assert.equal(built.workflow.metadata.name, claimed.workflowName);
    assert.deepEqual(built.workflow.spec.workflowTemplateRef, { name: 'diagnose-pod' });
  });

  it("annotates the draft's attempt, and no attempt when the draft has none", async () => {
    const claimed = (await claimCooldown(guardDeps())(targeted())) as Claimed;
    const build = buildStage({ workflowNamespace: 'argo' });
    assert.equal(
      draftOf(build({ ...claimed, attempt: 2 })).workflow.metadata.annotations['kube-sentinel.io/attempt'],
      '2',
    );
    assert.equal('kube-sentinel.io/attempt' in draftOf(build(claimed)).workflow.metadata.annotations, false);
  });
});

describe('the submit stage', () => {
  const submitting = (result: SubmitResult): WorkflowSubmitter => ({
    mode: 'cluster',
    target: 'fake',
    create: async () => result,
  });

  async function built(deps: SubmitDeps): Promise<Built> {
    const claimed = (await claimCooldown(deps)(targeted())) as Claimed;
    return draftOf(buildStage({ workflowNamespace: 'argo' })(claimed));
  }

  /** The commit is not awaited: one turn of the event loop lets it land. */
  const turn = () => new Promise((resolve) => setImmediate(resolve));

  const cases: {
    name: string;
    result: SubmitResult;
    outcome: Decision['outcome'];
    claim: 'committed' | 'pending' | null;
  }[] = [
    {
      name: 'created: submitted, the cooldown committed',
      result: { kind: 'created', status: 201, retryable: false },
      outcome: 'submitted',
      claim: 'committed',
    },
    {
      name: '409 AlreadyExists: submitted, the cooldown committed',
      result: { kind: 'exists', status: 409, retryable: false },
      outcome: 'submitted',
      claim: 'committed',
    },
    {
      name: 'nothing sent (dry-run): dry_run, the cooldown committed',
      result: { kind: 'not_sent', retryable: false },
      outcome: 'dry_run',
      claim: 'committed',
    },
    {
      name: 'a retryable failure: retry, the pending claim kept for the redelivery',
      result: {
        kind: 'failed',
        status: 503,
        retryable: true,
        reason: '503 ServiceUnavailable',
        retryAfterSeconds: 7,
        mayHaveLanded: false,
      },
      outcome: 'retry',
      claim: 'pending',
    },
    {
      name: 'any other failure: failed, the claim released',
      result: { kind: 'failed', status: 403, retryable: false, reason: '403 Forbidden', mayHaveLanded: false },
      outcome: 'failed',
      claim: null,
    },
  ];
  for (const { name, result, outcome, claim } of cases) {
    it(name, async () => {
      const deps = guardDeps();
      const draft = await built(deps);
      const decision = decided(await submitWorkflow(submitting(result), deps)(draft));
      assert.equal(decision.outcome, outcome);
      assert.deepEqual(decision.workflow, { namespace: 'argo', name: draft.workflowName });
      if (result.kind === 'failed' && result.retryAfterSeconds)
        assert.equal(decision.retryAfterSeconds, result.retryAfterSeconds);
      await turn();
      assert.equal((await deps.store.peek(draft.cooldownKey))?.state ?? null, claim);
    });
  }

  it('hands back the Workflow a capturing submitter kept', async () => {
    const deps = guardDeps();
    const draft = await built(deps);
    const decision = decided(await submitWorkflow(capturingSubmitter, deps)(draft));
    assert.equal(decision.outcome, 'dry_run');
    assert.deepEqual(decision.manifest, draft.workflow);
  });
});

describe('a list of stages', () => {
  it('stops at the first decision: later stages never run', async () => {
    const decision = await Stages.of((draft: Received) => decide(draft.alert, null, 'no_match'))
      .pipe((): never => assert.fail('ran after a decision'))
      .run({ alert: crashloop(), ruleSet: RULE_SET }, async () => assert.fail('nothing threw'));
    assert.equal(decision.outcome, 'no_match');
  });

  it('turns an exception into the rescue decision, given the last draft reached', async () => {
    let last: object | undefined;
    const decision = await Stages.of(matchRule)
      .pipe((): never => {
        throw new Error('a bug');
      })
      .run({ alert: crashloop(), ruleSet: RULE_SET }, async (draft) => {
        last = draft;
        return decide(draft.alert, null, 'retry', { reason: 'internal error' });
      });
    assert.equal(decision.outcome, 'retry');
    assert.equal((last as { rule?: { name: string } }).rule?.name, 'crashloop');
  });
});

describe('the recorder', () => {
  function recording(store: CooldownStore, audit: boolean) {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) > 0 });
    const deps = {
      store,
      logger,
      metrics: createMetrics({ defaults: false }),
      now: () => 0,
      settings: { replica: 'r1', auditMaxLen: 10 },
    };
    return { record: recorder(deps, { audit }), lines };
  }
  const submitted = decide(crashloop(), { name: 'crashloop', priority: 'P3' }, 'submitted', { retryAfterSeconds: 3 });

  it('logs one line and appends the documented answer to the audit trail', async () => {
    const store = new MemoryCooldownStore();
    const { record, lines } = recording(store, true);
    record(crashloop(), submitted);
    assert.equal(lines.length, 1);
    assert.deepEqual(
      [lines[0]?.msg, lines[0]?.outcome, lines[0]?.pod],
      ['decision', 'submitted', 'checkout-7d9f8b6c5-x2x9k'],
    );
    const [entry] = await store.listDecisions(1);
    assert.deepEqual(entry, {
      ...decide(crashloop(), { name: 'crashloop', priority: 'P3' }, 'submitted'),
      at: new Date(0).toISOString(),
      replica: 'r1',
    });
  });

  it('keeps explain decisions, and decisions the store could not guard, out of the audit trail', async () => {
    const store = new MemoryCooldownStore();
    recording(store, false).record(crashloop(), submitted);
    recording(store, true).record(crashloop(), decide(crashloop(), null, 'retry', { reason: STORE_UNAVAILABLE }));
    assert.deepEqual(await store.listDecisions(10), []);
  });
});
