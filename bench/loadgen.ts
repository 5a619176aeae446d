/**
 * The load generator, in a process of its own (forked by the runner with an IPC channel), so it
 * never shares an event loop with a server under test. Each message runs one autocannon
 * measurement and answers with its counts.
 */
import autocannon, { type Request } from 'autocannon';
import { type LabelledAlert, newAlert, postableBody, webhookBody } from './alerts.js';

export type Stream =
  /** The same bodies over and over (each connection cycles through them): the cooldown and no-match paths. */
  | { kind: 'fixed'; path: string; bodies: string[] }
  /** Every alert of every request never seen before: the submit path. */
  | { kind: 'new-alerts'; path: string; shape: 'webhook' | 'v2'; alertsPerBody: number; tag: string; endsAt: string };

export interface LoadRequest {
  id: number;
  url: string;
  stream: Stream;
  connections: number;
  seconds: number;
}

export interface LoadResult {
  id: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
  statusCodes: Record<string, number>;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

function requestsFor(stream: Stream, counter: { next: number }): Request[] {
  if (stream.kind === 'fixed') {
    return stream.bodies.map((body) => ({ method: 'POST', path: stream.path, headers: JSON_HEADERS, body }));
  }
  return [
    {
      method: 'POST',
      path: stream.path,
      headers: JSON_HEADERS,
      setupRequest(request) {
        const alerts: LabelledAlert[] = [];
        for (let i = 0; i < stream.alertsPerBody; i++) alerts.push(newAlert(stream.tag, counter.next++));
        const body = stream.shape === 'webhook' ? webhookBody(alerts) : postableBody(alerts, stream.endsAt);
        return { ...request, body };
      },
    },
  ];
}

async function run(request: LoadRequest): Promise<LoadResult> {
  // Shared by every connection of this run, so no two requests carry the same alert.
  const counter = { next: 0 };
  const result = await autocannon({
    url: request.url,
    connections: request.connections,
    pipelining: 1,
    duration: request.seconds,
    timeout: 30,
    requests: requestsFor(request.stream, counter),
  });
  return {
    id: request.id,
    ok2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, stats]) => [code, stats.count])),
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  };
}

if (!process.send) throw new Error('bench/loadgen.ts runs as a child of bench/run.ts (it needs an IPC channel)');
process.on('message', (message: LoadRequest) => {
  run(message).then(
    (result) => process.send!(result),
    (err: unknown) => process.send!({ id: message.id, error: String(err) }),
  );
});
// The runner closes the channel when it is done; nothing else keeps this process.
process.on('disconnect', () => process.exit(0));
