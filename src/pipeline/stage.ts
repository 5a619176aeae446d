import type { Alert } from '../alert.js';
import type { Decision } from '../decision.js';
import type { Parameter, Workflow } from '../kube/workflow.js';
import type { Rule, RuleSet } from '../rules/types.js';

/*
 * The drafts an alert becomes on its way through the stages; each stage adds what it found out.
 * A stage either hands on a richer draft or ends the alert's way with a Decision.
 */

/** An alert and the rule set in force for its request (a reload mid-request is not seen half-way). */
export interface Received {
  alert: Alert;
  ruleSet: RuleSet;
  /**
   * With --clusters, the cluster the alert asks for (routeToCluster refuses one not configured);
   * without, absent: there is one cluster, and keys, Workflows and records do not name it.
   */
  cluster?: string;
}

export interface Matched extends Received {
  rule: Rule;
}

export interface Keyed extends Matched {
  cooldownKey: string;
}

/** The labels that name what the Workflow acts on: checked Kubernetes names, or empty. */
export interface Target {
  namespace: string;
  pod: string;
  container: string;
}

export interface Targeted extends Keyed {
  target: Target;
  /** Every parameter of the Workflow, checked: built-in ones, then the rule's arguments, substituted. */
  parameters: Parameter[];
}

/** The claim a decision holds: its own, or a pending one re-used by a redelivery of the same alert. */
export interface Claim {
  key: string;
  workflowName: string;
  ownedByUs: boolean;
}

export interface Claimed extends Targeted {
  workflowName: string;
  /** Null when nothing was claimed: explain, or a cooldown store that failed open. */
  claim: Claim | null;
  /** The rate-limit window a slot was taken in, to give back if nothing gets created. */
  rateWindow?: number;
  /** Which attempt of the cooldown key's budget this Workflow is (1, 2, …), when the budget was counted. */
  attempt?: number;
}

export interface Built extends Claimed {
  workflow: Workflow;
}

/** A stage's answer: a richer draft for the next stage, or the decision that ends the alert's way. */
export type StageResult<Out> = Out | Decision | Promise<Out | Decision>;

/** One step of the pipeline: built once with its dependencies, called once per alert. */
export type Stage<In, Out> = (draft: In) => StageResult<Out>;

/** Drafts never carry an outcome; a decision always does. */
export function isDecision(value: object): value is Decision {
  return 'outcome' in value;
}

type AnyStage = (draft: unknown) => StageResult<unknown>;

/**
 * An ordered list of stages. `run` hands each stage's draft to the next and stops at the first
 * decision; the last stage of a list always decides.
 */
export class Stages<In extends object, Out> {
  private constructor(private readonly list: readonly AnyStage[]) {}

  static of<In extends object, Out>(first: Stage<In, Out>): Stages<In, Out> {
    return new Stages<In, Out>([first as AnyStage]);
  }

  pipe<Next>(stage: Stage<Out, Next>): Stages<In, Next> {
    return new Stages<In, Next>([...this.list, stage as AnyStage]);
  }

  /**
   * The decision for one draft. An exception in a stage becomes the decision `rescue` makes of
   * it, given the last draft reached (every later draft extends the first).
   */
  async run(draft: In, rescue: (last: In, err: unknown) => Promise<Decision>): Promise<Decision> {
    let current: object = draft;
    try {
      for (const stage of this.list) {
        const result = stage(current);
        const next = (result instanceof Promise ? await result : result) as object;
        if (isDecision(next)) return next;
        current = next;
      }
    } catch (err) {
      return rescue(current as In, err);
    }
    throw new Error('the last stage of a pipeline must decide');
  }
}
