import type { Logger } from 'pino';
import {
  approvalRequired,
  type EscalationLinks,
  type EscalationSubject,
  type ExhaustedOutcome,
  remediationExhausted,
  remediationFailed,
} from '../escalation/alerts.js';
import type { WatchedWorkflow } from '../kube/workflow.js';
import type { CooldownStore, EscalationSelection } from '../stores/cooldown-store.js';
import type { EscalationAlert } from './model.js';
import { approvalTimeoutMs, createdAt, type Observed } from './state.js';

export type { EscalationSubject };

/** Sends escalations to the team's Alertmanager (or logs them); never blocks, never throws. */
export interface EscalationSender {
  fire(alert: EscalationAlert, context: { cooldownKey: string; workflow?: string; lastsMs?: number }): void;
  resolve(alert: EscalationAlert, context: { cooldownKey: string; workflow?: string }): void;
}

/** The three alerts, built from their subject (escalation/alerts.ts). */
export interface EscalationBuilders {
  failed(subject: EscalationSubject, observed: Observed): EscalationAlert;
  approvalRequired(subject: EscalationSubject, workflow: WatchedWorkflow): EscalationAlert;
  exhausted(subject: EscalationSubject, outcome: ExhaustedOutcome): EscalationAlert;
}

/** The builders of escalation/alerts.ts, with the Argo UI link when there is one. */
export function escalationBuilders(links: EscalationLinks): EscalationBuilders {
  return {
    failed: (subject, observed) =>
      remediationFailed(
        { ...subject, workflow: subject.workflow ?? { namespace: '', name: '' } },
        {
          state: observed.state === 'unknown' ? 'unknown' : 'failed',
          ...(observed.message ? { message: observed.message } : {}),
        },
        links,
      ),
    approvalRequired: (subject, workflow) =>
      approvalRequired(
        { ...subject, workflow: { namespace: workflow.metadata.namespace, name: workflow.metadata.name } },
        {
          createdAt: createdAt(workflow) ?? Date.now(),
          approvalTimeoutMs: approvalTimeoutMs(workflow) ?? 0,
        },
        links,
      ),
    exhausted: (subject, outcome) => remediationExhausted(subject, outcome, links),
  };
}

/**
 * Which escalations of a cooldown key are firing lives in the shared store, so that each is fired
 * by the one replica that opened it and resolved by the one that closed it.
 */
export class Escalations {
  constructor(
    private readonly deps: {
      store: CooldownStore;
      sender: EscalationSender;
      builders: EscalationBuilders;
      ttlMs: number;
      logger: Logger;
    },
  ) {}

  get failed(): EscalationBuilders['failed'] {
    return this.deps.builders.failed;
  }

  get approvalRequired(): EscalationBuilders['approvalRequired'] {
    return this.deps.builders.approvalRequired;
  }

  get exhausted(): EscalationBuilders['exhausted'] {
    return this.deps.builders.exhausted;
  }

  /** Fires `alert` unless it is already firing. With the store away it fires anyway: Alertmanager deduplicates, a lost page is worse. */
  async open(subject: EscalationSubject, id: string, alert: EscalationAlert, lastsMs?: number): Promise<void> {
    const context = { ...contextOf(subject), ...(lastsMs === undefined ? {} : { lastsMs }) };
    let opened = true;
    try {
      opened = await this.deps.store.openEscalation(
        subject.cooldownKey,
        id,
        alert,
        Math.max(this.deps.ttlMs, lastsMs ?? 0),
      );
    } catch (err) {
      this.deps.logger.warn(
        { err: (err as Error).message, id },
        'could not mark an escalation as firing; sending it anyway',
      );
    }
    if (opened) this.deps.sender.fire(alert, context);
  }

  /** Resolves the firing escalations of the subject's key with these ids (or prefixes, or all of them). */
  async close(subject: EscalationSubject, ids: EscalationSelection): Promise<void> {
    let closed: EscalationAlert[];
    try {
      closed = await this.deps.store.closeEscalations(subject.cooldownKey, ids);
    } catch (err) {
      // They end by themselves at their endsAt (--escalation-ttl).
      this.deps.logger.warn({ err: (err as Error).message }, 'could not resolve escalations');
      return;
    }
    for (const alert of closed)
      this.deps.sender.resolve(alert, { cooldownKey: subject.cooldownKey, ...workflowOf(alert) });
  }
}

function contextOf(subject: EscalationSubject): { cooldownKey: string; workflow?: string } {
  return {
    cooldownKey: subject.cooldownKey,
    ...(subject.workflow ? { workflow: `${subject.workflow.namespace}/${subject.workflow.name}` } : {}),
  };
}

function workflowOf(alert: EscalationAlert): { workflow?: string } {
  const { workflow, workflow_namespace: namespace } = alert.labels;
  return workflow && namespace ? { workflow: `${namespace}/${workflow}` } : {};
}
