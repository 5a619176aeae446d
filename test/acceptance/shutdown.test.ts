/**
 * The built `kube-sentinel serve` (dist/cli.js; `npm test` builds first) sent SIGTERM while
 * keep-alive clients keep posting alerts to it, as Alertmanager's connection pool does: every
 * request a client sent is answered (the last one on each connection with Connection: close),
 * none is reset, then new connections are refused and the process exits 0. Three runs: before
 * the fix, one run in three reset requests on kept-alive connections, now none may.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, it } from 'node:test';
import { REPO_ROOT, startReceiver } from '../support/receiver.js';

const CLIENTS = 20;
const RULES = `${REPO_ROOT}rules/default.yaml`;

describe('SIGTERM under keep-alive load', () => {
  for (const run of [1, 2, 3]) {
    it(`answers or cleanly closes every keep-alive client, resetting no request (run ${run})`, async () => {
      const receiver = await startReceiver(['--port', '0', '--rules', RULES, '--dry-run']);
      const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
      const outcomes: Record<string, number> = {};
      // Each client's answers so far: SIGTERM comes once every connection is established and in
      // use (a connection still in the listener's queue when the port closes is the kernel's to
      // reset, accepted by no one).
      const answeredBy = new Array<number>(CLIENTS).fill(0);
      let signalled = false;
      const post = (client: number, n: number) =>
        new Promise<string>((resolve) => {
          const alerts = Array.from({ length: 20 }, (_, i) => ({
            status: 'firing',
            labels: {
              alertname: 'KubePodCrashLooping',
              namespace: `ns-${client}`,
              pod: `api-${n}-${i}-x2b4c`,
              container: 'api',
            },
            annotations: { description: 'back-off restarting failed container (CrashLoopBackOff)' },
          }));
          const body = JSON.stringify({ version: '4', status: 'firing', alerts });
          const request = http.request(`${receiver.url}/webhook/alertmanager`, {
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          });
          request.once('error', (err: NodeJS.ErrnoException) =>
            resolve(`${err.code}${request.reusedSocket ? ' on a kept-alive connection' : ''}`),
          );
          request.once('response', (response) => {
            response.resume();
            response.once('end', () => {
              answeredBy[client] = (answeredBy[client] ?? 0) + 1;
              if (!signalled && answeredBy.every((n) => n >= 3)) {
                signalled = true;
                receiver.process.child.kill('SIGTERM');
              }
              resolve(`${response.statusCode}${response.headers.connection === 'close' ? ' close' : ''}`);
            });
          });
          request.end(body);
        });
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, client) => {
          for (let n = 0; ; n++) {
            const outcome = await post(client, n);
            outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
            if (!outcome.startsWith('200')) return;
          }
        }),
      );
      agent.destroy();
      assert.equal(await receiver.process.exited, 0, receiver.process.output().slice(-2000));
      assert.deepEqual(Object.keys(outcomes).sort(), ['200', '200 close', 'ECONNREFUSED'], JSON.stringify(outcomes));
      assert.equal(outcomes.ECONNREFUSED, CLIENTS);
    });
  }
});
