import { randomUUID } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { dnsLabelProblem, dnsSubdomainProblem } from '../kube/names.js';
import { Pause } from '../pause.js';
import type { LocalPauses } from '../pipeline/local-pauses.js';
// Registers the date-time format the body's `until` is checked against.
import '../pipeline/receive.js';
import type { ClusterRouting } from '../pipeline/route.js';
import { formatDuration, parseDuration } from '../rules/duration.js';
import type { RuleSet } from '../rules/types.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import { ErrorBody, sendError, sendStoreUnavailable } from './errors.js';
import type { App } from './typebox.js';

/** The longest a pause may last: one forgotten must not switch remediation off for good. */
const MAX_PAUSE_MS = 30 * 24 * 3600_000;
/** MAX_PAUSE_MS as the refusals say it. */
const MAX_PAUSE_TEXT = `${formatDuration(MAX_PAUSE_MS)} (30 days)`;
/** How many known names an error lists before it says how many more there are. */
const NAMES_LISTED = 20;

export const PauseRequest = Type.Object(
  {
    namespace: Type.Optional(Type.String({ maxLength: 63 })),
    rule: Type.Optional(Type.String({ maxLength: 253 })),
    workload: Type.Optional(Type.String({ maxLength: 253 })),
    cluster: Type.Optional(Type.String({ maxLength: 63 })),
    /** How long from now, as a Go duration (`2h`, `90m`); or `until`. */
    duration: Type.Optional(Type.String({ maxLength: 32 })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    reason: Type.String({ minLength: 1, maxLength: 256 }),
    createdBy: Type.String({ minLength: 1, maxLength: 128 }),
  },
  // A misspelt selector must be refused, not ignored: it would make a pause of everything.
  { additionalProperties: false },
);
type PauseRequest = Static<typeof PauseRequest>;

export const PauseList = Type.Object({ pauses: Type.Array(Pause) });

export interface PauseRouteDeps {
  store: CooldownStore;
  /** This replica's copy: what it stores or removes is in it at once, for the next alert here. */
  pauses: LocalPauses;
  rules: () => RuleSet;
  clusters?: ClusterRouting;
  now: () => number;
}

class Refused extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field} ${message}`);
  }
}

function listed(names: readonly string[]): string {
  const shown = names.slice(0, NAMES_LISTED).join(', ');
  return names.length > NAMES_LISTED ? `${shown} and ${names.length - NAMES_LISTED} more` : shown || 'none';
}

/** The selectors, checked: a pause that could never match is refused, or its author would believe it holds. */
function selectorsOf(
  body: PauseRequest,
  deps: PauseRouteDeps,
): Pick<Pause, 'namespace' | 'rule' | 'workload' | 'cluster'> {
  const { namespace, rule, workload, cluster } = body;
  const namespaceProblem = namespace === undefined ? null : dnsLabelProblem(namespace);
  if (namespaceProblem) throw new Refused('body.namespace', namespaceProblem);
  const workloadProblem = workload === undefined ? null : dnsSubdomainProblem(workload);
  if (workloadProblem) throw new Refused('body.workload', workloadProblem);
  if (rule !== undefined) {
    const known = deps.rules().rules.map((r) => r.name);
    if (!known.includes(rule)) throw new Refused('body.rule', `names no loaded rule (rules: ${listed(known)})`);
  }
  if (cluster !== undefined) {
    if (!deps.clusters) {
      throw new Refused(
        'body.cluster',
        'is set, but this receiver serves one cluster (no --clusters): it would never match',
      );
    }
    if (!deps.clusters.names.includes(cluster)) {
      throw new Refused('body.cluster', `names no configured cluster (clusters: ${listed(deps.clusters.names)})`);
    }
  }
  return {
    ...(namespace === undefined ? {} : { namespace }),
    ...(rule === undefined ? {} : { rule }),
    ...(workload === undefined ? {} : { workload }),
    ...(cluster === undefined ? {} : { cluster }),
  };
}

/** Epoch ms at which the pause ends: `duration` from now, or `until`; never more than MAX_PAUSE_MS away. */
function expiryOf(body: PauseRequest, now: number): number {
  if (body.duration !== undefined && body.until !== undefined) {
    throw new Refused('body.until', 'must not be given with duration: one says when the pause ends');
  }
  if (body.duration !== undefined) {
    const ms = parseDuration(body.duration);
    if (ms === null) throw new Refused('body.duration', 'must be a duration such as 30m, 2h or 1h30m');
    if (ms < 1000)
      throw new Refused('body.duration', 'must be at least 1s: a shorter pause is over before anyone reads it');
    if (ms > MAX_PAUSE_MS) throw new Refused('body.duration', `must be at most ${MAX_PAUSE_TEXT}`);
    return now + ms;
  }
  if (body.until !== undefined) {
    const at = Date.parse(body.until.toUpperCase());
    if (Number.isNaN(at)) throw new Refused('body.until', 'must be a date-time such as 2026-11-26T18:00:00Z');
    if (at <= now) throw new Refused('body.until', `must be in the future (it is ${new Date(now).toISOString()} now)`);
    if (at - now > MAX_PAUSE_MS) throw new Refused('body.until', `must be at most ${MAX_PAUSE_TEXT} from now`);
    return at;
  }
  throw new Refused('body.duration', 'or body.until is required: a pause must end');
}

/** C0 and C1 controls, DEL: what a terminal acts on rather than prints. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are what is looked for
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Whitespace passes the schema's minLength, and says nothing to whoever finds the pause; control
 * characters (escapes, newlines) would be printed raw by `kube-sentinel pauses` to every
 * operator's terminal: a screen cleared, a title changed, a forged row in the table.
 */
function refuseBlank(body: PauseRequest): void {
  for (const field of ['reason', 'createdBy'] as const) {
    if (body[field].trim() === '') throw new Refused(`body.${field}`, 'must not be blank');
    if (CONTROL.test(body[field])) {
      throw new Refused(
        `body.${field}`,
        'must not hold control characters (newlines, tabs, escapes): one line of text',
      );
    }
  }
}

/** At most this many pauses in force at once; one more is refused (409). */
export const MAX_PAUSES = 1000;

/** Pauses (SPEC §11): added, listed and removed here, in force on every replica. */
export function pauseRoutes(app: App, deps: PauseRouteDeps): void {
  const add = {
    body: PauseRequest,
    response: { 201: Pause, 400: ErrorBody, 401: ErrorBody, 409: ErrorBody, 503: ErrorBody },
  };
  app.post('/v1/pauses', { schema: add }, async (request, reply) => {
    const now = deps.now();
    let pause: Pause;
    try {
      refuseBlank(request.body);
      const selectors = selectorsOf(request.body, deps);
      const expiresAt = expiryOf(request.body, now);
      pause = {
        id: randomUUID(),
        ...selectors,
        reason: request.body.reason,
        createdBy: request.body.createdBy,
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(expiresAt).toISOString(),
      };
    } catch (err) {
      if (err instanceof Refused) return sendError(reply, 'invalid_request', err.message, err.field);
      throw err;
    }
    try {
      // Every replica reloads every pause on each change, and decides each alert against all of
      // them: a script adding pauses in a loop must not make that unbounded. Replicas adding at
      // the same moment may go a few past it.
      const inForce = (await deps.store.listPauses()).length;
      if (inForce >= MAX_PAUSES) {
        return sendError(
          reply,
          'limit_reached',
          `${inForce} pauses are in force, the most there may be (${MAX_PAUSES}): remove some, or pause more broadly`,
        );
      }
      await deps.store.addPause(pause);
    } catch (err) {
      return sendStoreUnavailable(reply, err);
    }
    deps.pauses.added(pause);
    request.log.info({ pause }, 'pause added');
    return reply.code(201).send(pause);
  });

  const list = { response: { 200: PauseList, 401: ErrorBody, 503: ErrorBody } };
  app.get('/v1/pauses', { schema: list }, async (_request, reply) => {
    try {
      const pauses = await deps.store.listPauses();
      // What ends first comes first; the ISO strings of one clock sort as their times.
      pauses.sort((a, b) => a.expiresAt.localeCompare(b.expiresAt) || a.id.localeCompare(b.id));
      return { pauses };
    } catch (err) {
      return sendStoreUnavailable(reply, err);
    }
  });

  const remove = {
    // fastify refuses a longer parameter itself (414).
    params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) }),
    response: { 200: Pause, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 503: ErrorBody },
  };
  app.delete('/v1/pauses/:id', { schema: remove }, async (request, reply) => {
    const { id } = request.params;
    let removed: Pause | null;
    try {
      removed = await deps.store.removePause(id);
    } catch (err) {
      return sendStoreUnavailable(reply, err);
    }
    if (!removed)
      return sendError(reply, 'not_found', `no pause ${JSON.stringify(id)} is in force (it may have ended already)`);
    deps.pauses.removed(id);
    request.log.info({ pause: removed }, 'pause removed');
    return removed;
  });
}
