import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from './errors.js';

/**
 * The bound on the alerts in flight: requests whose alerts are being read, decided or answered.
 * Past it, a request is answered 503 with Retry-After before anything is done for it (no claim,
 * no Workflow, no audit record), and Alertmanager delivers it again later; an accepted request is
 * always decided to the end.
 *
 * A request weighs one alert per alert it holds, or one per BYTES_PER_ALERT of its body, whichever
 * is more: the body, its parsed form and the answer take memory with its size too. Before the body
 * is read only its Content-Length is known (the body limit when it has none), so it is weighed by
 * size first and, once parsed, by both. A request heavier than the whole bound is taken when nothing
 * else is in flight, so that no group is refused forever.
 */
export const BYTES_PER_ALERT = 512;

/** How long a refused sender is asked to wait; a group of 10,000 alerts takes a few seconds. */
export const OVERLOADED_RETRY_AFTER_SECONDS = 5;

export class Admission {
  private weight = 0;

  constructor(readonly maxAlerts: number) {
    if (!Number.isInteger(maxAlerts) || maxAlerts < 1) throw new RangeError(`max alerts in flight: ${maxAlerts}`);
  }

  /** Alerts (by weight) in flight now. */
  get inFlight(): number {
    return this.weight;
  }

  /** A ticket for `weight` alerts, or undefined when taking them would pass the bound. */
  take(weight: number): Ticket | undefined {
    const clipped = this.clip(weight);
    if (!this.fits(clipped, 0)) return undefined;
    this.weight += clipped;
    return new Ticket(this, clipped);
  }

  /** @internal for Ticket */
  clip(weight: number): number {
    return Math.min(this.maxAlerts, Math.max(1, Math.ceil(weight)));
  }

  /** @internal for Ticket: would `more` fit, given that `held` of what is in flight is the asker's own? */
  fits(more: number, held: number): boolean {
    const others = this.weight - held;
    return others === 0 || others + held + more <= this.maxAlerts;
  }

  /** @internal for Ticket */
  add(delta: number): void {
    this.weight += delta;
  }
}

/**
 * What one request holds. It is held by the request until its connection is done with it (answered
 * or gone) and, while its alerts are decided, by the decision too: a sender that hangs up does not
 * free the slot of work still going on.
 */
export class Ticket {
  private holders = 1;

  constructor(
    private readonly admission: Admission,
    private held: number,
  ) {}

  get weight(): number {
    return this.held;
  }

  /** The request's weight now that its alerts are counted; false (nothing changed) when more would not fit. */
  reweigh(weight: number): boolean {
    if (this.holders === 0) return false;
    const next = this.admission.clip(weight);
    if (next > this.held && !this.admission.fits(next - this.held, this.held)) return false;
    this.admission.add(next - this.held);
    this.held = next;
    return true;
  }

  /** One more holder (the decision), released with `release`. */
  hold(): void {
    if (this.holders > 0) this.holders++;
  }

  /** Drops one holder; the weight is given back when the last one goes. Extra calls do nothing. */
  release(): void {
    if (this.holders === 0) return;
    this.holders--;
    if (this.holders === 0) this.admission.add(-this.held);
  }
}

/** What a request weighs before its body is parsed: its declared size, or the most it may send. */
export function weightBeforeParsing(contentLength: string | undefined, bodyLimit: number): number {
  const declared = contentLength === undefined ? Number.NaN : Number(contentLength);
  const bytes = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, bodyLimit) : bodyLimit;
  return Math.ceil(bytes / BYTES_PER_ALERT);
}

/** What a parsed request weighs. */
export function weightOf(alerts: number, contentLength: string | undefined, bodyLimit: number): number {
  return Math.max(alerts, weightBeforeParsing(contentLength, bodyLimit));
}

/**
 * Where a request keeps its ticket: a property every request has from the start (decorated by
 * `admitBySize`'s caller, see `TICKET_DECORATION`), not a WeakMap, whose entries for every request
 * the garbage collector would have to walk.
 */
const TICKET = Symbol('kube-sentinel.admission');
type WithTicket = FastifyRequest & { [TICKET]?: Ticket | null };

/** For `app.decorateRequest(...TICKET_DECORATION)` on the scope of the routes that use admission. */
export const TICKET_DECORATION = [TICKET, null] as const;

/** Reads the request's body to its end, keeping none of it (the request timeout bounds a slow one). */
function discardBody(request: FastifyRequest): Promise<void> {
  const body = request.raw;
  if (body.readableEnded || body.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    body.once('end', resolve);
    body.once('close', resolve);
    body.once('error', resolve);
    body.resume();
  });
}

function refuse(reply: FastifyReply, admission: Admission): FastifyReply {
  reply.header('Retry-After', String(OVERLOADED_RETRY_AFTER_SECONDS));
  return sendError(
    reply,
    'overloaded',
    `${admission.inFlight} alerts in flight (--max-alerts-in-flight ${admission.maxAlerts}); nothing was done, retry after ${OVERLOADED_RETRY_AFTER_SECONDS} s`,
  );
}

/**
 * The ingest routes' onRequest hook (after authentication): admits a request by its size before
 * its body is read, or answers 503. Its ticket goes back when the response is done with.
 */
export function admitBySize(admission: Admission, bodyLimit: number) {
  // A callback hook, not an async one: it runs for every ingest request, and a promise each costs.
  return (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const ticket = admission.take(weightBeforeParsing(request.headers['content-length'], bodyLimit));
    if (ticket) {
      (request as WithTicket)[TICKET] = ticket;
      // 'close' comes once the answer is sent, or when the connection goes before that.
      reply.raw.once('close', () => ticket.release());
      done();
      return;
    }
    // The body is read and dropped first (nothing of it kept): answering while the sender still
    // writes would close the connection under it, and it would see a broken pipe, not the 503.
    // Answered from the hook, the request goes no further (done is not called).
    discardBody(request)
      .then(() => refuse(reply, admission))
      .catch((err: unknown) => reply.send(err));
  };
}

/**
 * In the handler, once the body is parsed: counts the request's alerts and, if they fit, runs
 * `decide` holding the request's ticket until it has finished; otherwise answers 503 without
 * running it.
 */
export async function decideAdmitted<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  admission: Admission,
  weight: number,
  decide: () => Promise<T>,
): Promise<T | FastifyReply> {
  const ticket = (request as WithTicket)[TICKET];
  // Without a ticket (a route registered without the hook), nothing is bounded here.
  if (!ticket) return decide();
  if (!ticket.reweigh(weight)) return refuse(reply, admission);
  ticket.hold();
  try {
    return await decide();
  } finally {
    ticket.release();
  }
}
