import type { Logger } from 'pino';
import type { Alert } from '../alert.js';
import { type Decision, decide } from '../decision.js';
import { capturingSubmitter, type WorkflowSubmitter } from '../kube/client.js';
import type { OptOuts } from '../kube/opt-out.js';
import type { RuleSet } from '../rules/types.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import { type AttemptDeps, recallFromCluster, spendAttempt } from './attempts.js';
import { buildStage } from './build.js';
import type { ClusterRecord } from './cluster-record.js';
import { claimCooldown, type GuardSettings, limitRate, peekCooldown, releaseClaim } from './guard.js';
import { LocalCooldowns } from './local-cooldowns.js';
import type { LocalPauses } from './local-pauses.js';
import { keyCooldown, matchRule } from './match.js';
import type { Metrics } from './metrics.js';
import { checkOptOut } from './opt-out.js';
import { checkPauses, recheckPauses } from './pause.js';
import { recorder } from './record.js';
import type { RenderSettings } from './render.js';
import { type ClusterRouting, clusterOf, isKnownCluster, routeToCluster } from './route.js';
import { UnsettledClaims } from './settle.js';
import { mapInSlices, Slots } from './slots.js';
import { type Built, type Claim, type Claimed, isDecision, type Received, Stages } from './stage.js';
import { submitWorkflow } from './submit.js';
import { validateTarget } from './target.js';

export interface PipelineSettings extends GuardSettings, RenderSettings {
  submitTimeoutMs: number;
  auditMaxLen: number;
  /** Names this process in the audit trail. */
  replica: string;
}

export interface PipelineDeps {
  /** The rules in force now; a reload swaps the whole set, so one alert always sees one set. */
  rules: () => RuleSet;
  store: CooldownStore;
  /** Creates the Workflows; the dry-run submitter creates nothing. */
  submitter: WorkflowSubmitter;
  settings: PipelineSettings;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  /** The cluster as the record of what was done (SPEC §9); absent when nothing is created (dry-run, explain, test). */
  cluster?: ClusterRecord;
  /** Tells a person that a key's attempt budget is spent (KubeSentinelRemediationExhausted). */
  exhausted?: AttemptDeps['exhausted'];
  /** Committed cooldowns answered from memory; one of its own when not given. */
  local?: LocalCooldowns;
  /** A resolved alert came in: its remediations still awaiting approval are stopped. Never throws. */
  sourceResolved?: (alert: Alert, rules: RuleSet) => void;
  /** --clusters: which cluster each alert goes to. Absent: one cluster, named nowhere. */
  clusters?: ClusterRouting;
  /** This replica's copy of the pauses (SPEC §11); absent, nothing is ever paused (explain and test offline). */
  pauses?: LocalPauses;
  /** Opt-out annotations (SPEC §11), read from the cluster; absent without one: nothing is looked up. */
  optOuts?: OptOuts;
}

export interface Pipeline {
  /** Decides every alert of one request and acts on it: claims, submits, records in the audit trail. */
  ingest(alerts: readonly Alert[]): Promise<Decision[]>;
  /**
   * The decisions the same alerts would get, without side effects: the cooldown is peeked at,
   * nothing is submitted or recorded; `dry_run` stands where `submitted` would, and carries the
   * Workflow (`manifest`).
   */
  explain(alerts: readonly Alert[]): Promise<Decision[]>;
}

/**
 * Alerts decided at once, over all requests; the others wait their turn, first come first served,
 * so a request of 10,000 alerts is decided this many at a time, not all at once. What an alert
 * holds while it is decided (its draft, claim, Workflow, create request, log line and audit
 * record) is what a storm costs: 64 kept one 10,000-alert group at about 175 MB RSS where 128 took
 * 195 MB and 256 over 220 MB (bench/README.md, scenario 6). Their creates wait in the API client's
 * 16 sockets with their --submit-timeout already running, so a claim never waits longer than that
 * for its create.
 */
export const DECIDING_AT_ONCE = 64;

/** Stands for a claim explain never takes: nothing is released for it (not owned). */
const PEEK_CLAIM: Claim = { key: '', workflowName: '', ownedByUs: false };

/**
 * The whole flow, built once. Each alert goes through the stages top to bottom until one decides:
 *
 *   ingest:  match → route → cooldown key → target → pause → opt-out → claim → cluster → attempts → rate limit → pause → build → submit
 *   explain: match → route → cooldown key → target → pause → opt-out → peek  →           attempts →                      build → submit (captured)
 *
 * (route: with --clusters, the cluster the alert names must be configured; pause: a paused alert
 * claims nothing; opt-out: the target's Namespace or workload annotated
 * kube-sentinel.io/remediation: disabled, read from the cluster after the pauses, which cost no
 * API call; the pauses again before the build: one added while the alert was on its way stops it.)
 * then its decision is recorded. Targets are checked before the claim, so an invalid, paused or
 * opted-out one never holds a cooldown; the Workflow is built after it, under the name the claim
 * gave it. A new claim is checked against the cluster (the record of what was done) and the attempt budget
 * before anything is created.
 */
export function createPipeline(given: PipelineDeps): Pipeline {
  const deps = { ...given, unsettled: new UnsettledClaims(), local: given.local ?? new LocalCooldowns(given.now) };
  const build = buildStage(deps.settings);
  // Explain peeks at the budget without a claim, a cluster lookup or an escalation.
  const budget = spendAttempt({ ...deps, cluster: undefined, exhausted: undefined });
  const peekAttempts = async (draft: Claimed): Promise<Claimed | Decision> => {
    const peeked = await budget({ ...draft, claim: PEEK_CLAIM, inCluster: [] });
    return isDecision(peeked) ? peeked : { ...peeked, claim: draft.claim };
  };
  const route = routeToCluster(deps.clusters);
  const pause = checkPauses(deps);
  const optOut = checkOptOut(deps.optOuts);
  const ingest = Stages.of(matchRule)
    .pipe(route)
    .pipe(keyCooldown)
    .pipe(validateTarget)
    .pipe(pause)
    .pipe(optOut)
    .pipe(claimCooldown(deps))
    .pipe(recallFromCluster(deps))
    .pipe(spendAttempt(deps))
    .pipe(limitRate(deps))
    .pipe(recheckPauses(deps))
    .pipe(build)
    .pipe(submitWorkflow(deps.submitter, deps));
  const explain = Stages.of(matchRule)
    .pipe(route)
    .pipe(keyCooldown)
    .pipe(validateTarget)
    .pipe(pause)
    .pipe(optOut)
    .pipe(peekCooldown(deps))
    .pipe(peekAttempts)
    .pipe(build)
    .pipe(submitWorkflow(capturingSubmitter, deps));

  /** An unexpected bug must not leave the key blocked for the whole lease, nor crash the request. */
  const rescue = async (last: Received, err: unknown): Promise<Decision> => {
    // The last draft reached: how far the alert got tells what there is to undo.
    const draft = last as Received & Partial<Built>;
    if (draft.claim) await releaseClaim(draft.claim, deps);
    deps.logger.error({ err, rule: draft.rule?.name ?? null }, 'unexpected error while deciding');
    return decide(draft.alert, draft.rule ?? null, 'retry', {
      ...(draft.cooldownKey === undefined ? {} : { cooldownKey: draft.cooldownKey }),
      reason: 'internal error',
    });
  };

  // Shared by ingest and explain, by every request: the alerts being decided at once.
  const slots = new Slots(DECIDING_AT_ONCE);
  const decideEach = (stages: Stages<Received, never>, record: (alert: Alert, decision: Decision) => void) => {
    const { clusters } = deps;
    const decideOne = async (alert: Alert, ruleSet: RuleSet): Promise<Decision> => {
      const cluster = clusters ? clusterOf(alert, clusters) : undefined;
      const decided = await stages.run({ alert, ruleSet, ...(cluster === undefined ? {} : { cluster }) }, rescue);
      // Every decision names the cluster it was routed to; one for a cluster not configured names it in its reason.
      const decision =
        clusters && cluster !== undefined && isKnownCluster(cluster, clusters) ? { ...decided, cluster } : decided;
      record(alert, decision);
      return decision;
    };
    return (alerts: readonly Alert[]) => {
      const ruleSet = deps.rules();
      return mapInSlices(alerts, DECIDING_AT_ONCE, (alert) => slots.run(() => decideOne(alert, ruleSet)));
    };
  };

  const ingestAll = decideEach(ingest, recorder(deps, { audit: true }));
  return {
    ingest(alerts) {
      for (const alert of alerts) {
        deps.metrics.alertsReceived.inc({ source: alert.source, status: alert.status });
        if (alert.status === 'resolved') deps.sourceResolved?.(alert, deps.rules());
      }
      return ingestAll(alerts);
    },
    explain: decideEach(explain, recorder(deps, { audit: false })),
  };
}
