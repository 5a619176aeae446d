/**
 * The HTTP server against its clients, over real sockets on 127.0.0.1 with short configured
 * timeouts: a slow sender is cut off, a long decision is not, the connection cap closes extra
 * connections, an idle keep-alive connection is closed, and closing answers keep-alive clients
 * that are still sending instead of resetting their requests.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { CREATED, type SubmitResult } from '../src/kube/result.js';
import { firing, testApp, webhook } from './support/app.js';

type TestAppOptions = NonNullable<Parameters<typeof testApp>[0]>;

async function listening(options: TestAppOptions) {
  const test = await testApp(options);
  await test.app.listen({ port: 0, host: '127.0.0.1' });
  const address = test.app.server.address() as net.AddressInfo;
  return { ...test, port: address.port, url: `http://127.0.0.1:${address.port}` };
}

/** Resolves when the socket closes, with what it received; rejects after `boundMs` (the fault not met). */
function closed(socket: net.Socket, boundMs: number): Promise<{ data: string; afterMs: number }> {
  const started = performance.now();
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
  socket.on('error', () => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${boundMs} ms; received ${data}`)), boundMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ data, afterMs: performance.now() - started });
    });
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

const BODY = JSON.stringify(
  webhook([firing({ alertname: 'X', namespace: 'shop', pod: 'api-0' }, { d: 'crash loop' })]),
);

describe('the HTTP server', () => {
  it('cuts off a client that sends its request too slowly (--request-timeout), answering 408', async () => {
    const { app, port } = await listening({ config: { requestTimeoutMs: 300 } });
    const socket = await connect(port);
    try {
      socket.write(
        `POST /webhook/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n`,
      );
      // A byte now and then: never idle, never done.
      let sent = 0;
      const trickle = setInterval(() => socket.writable && socket.write(BODY.charAt(sent++)), 50);
      const { data, afterMs } = await closed(socket, 5000).finally(() => clearInterval(trickle));
      assert.match(data, /^HTTP\/1\.1 408 /);
      assert.ok(afterMs >= 250, `closed after ${afterMs} ms`);
    } finally {
      socket.destroy();
      await app.close();
    }
  });

  it('does not cut off an answer that takes longer than the request timeout to decide', async () => {
    const slowSubmitter = {
      mode: 'cluster' as const,
      target: 'slow',
      async create(): Promise<SubmitResult> {
        await new Promise((resolve) => setTimeout(resolve, 600));
        return CREATED;
      },
    };
    const { app, url } = await listening({ config: { requestTimeoutMs: 200 }, submitter: slowSubmitter });
    try {
      const response = await fetch(`${url}/webhook/alertmanager`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: BODY,
      });
      assert.equal(response.status, 200);
      assert.equal(
        ((await response.json()) as { decisions: { outcome: string }[] }).decisions[0]?.outcome,
        'submitted',
      );
    } finally {
      await app.close();
    }
  });

  it('closes connections past --max-connections as soon as they are accepted; the others keep working', async () => {
    const { app, port, logs } = await listening({ config: { maxConnections: 2 } });
    const sockets = [await connect(port), await connect(port), await connect(port)];
    const [first, second, third] = sockets as [net.Socket, net.Socket, net.Socket];
    try {
      const { data } = await closed(third, 5000);
      assert.equal(data, '', 'closed without an answer');
      for (const socket of [first, second]) {
        const answer = new Promise<string>((resolve) =>
          socket.once('data', (chunk: Buffer) => resolve(chunk.toString())),
        );
        socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
        assert.match(await answer, /^HTTP\/1\.1 200 /);
        socket.destroy();
      }
      assert.ok(logs().some((line) => line.msg === 'connection limit reached: new connections are closed'));
    } finally {
      for (const socket of sockets) socket.destroy();
      await app.close();
    }
  });

  it('closes an idle keep-alive connection after --keep-alive-timeout', async () => {
    const { app, port } = await listening({ config: { keepAliveTimeoutMs: 200 } });
    const socket = await connect(port);
    try {
      const result = closed(socket, 5000);
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      const { data, afterMs } = await result;
      assert.match(data, /^HTTP\/1\.1 200 /);
      assert.doesNotMatch(data, /connection: close/i, 'kept alive, then closed for idling');
      assert.ok(afterMs >= 150, `closed after ${afterMs} ms`);
    } finally {
      socket.destroy();
      await app.close();
    }
  });

  it('on close, answers keep-alive clients still sending (Connection: close) and resets none of their requests', async () => {
    const { app, url } = await listening({ config: { maxWorkflowsPerMinute: 0 } });
    const CLIENTS = 16;
    const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
    const outcomes: Record<string, number> = {};
    const count = (what: string) => (outcomes[what] = (outcomes[what] ?? 0) + 1);
    let answered = 0;
    let closing: Promise<void> | undefined;
    const post = (i: number) =>
      new Promise<string>((resolve) => {
        const body = JSON.stringify(
          webhook([firing({ alertname: 'X', namespace: `ns-${i}`, pod: 'api-0' }, { d: 'crash loop' })]),
        );
        const request = http.request(`${url}/webhook/alertmanager`, {
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
            answered++;
            // Close once every client is well into its keep-alive loop, from inside a response:
            // the other clients' next requests are on their way right then.
            if (answered === CLIENTS * 5) closing = app.close();
            resolve(`${response.statusCode}${response.headers.connection === 'close' ? ' close' : ''}`);
          });
        });
        request.end(body);
      });
    const client = async (c: number) => {
      for (let n = 0; ; n++) {
        const outcome = await post(c * 1000 + n);
        count(outcome);
        if (!outcome.startsWith('200')) return;
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    await closing;
    agent.destroy();
    // Each client ends with an answer that closes its connection, then finds the port closed.
    assert.deepEqual(Object.keys(outcomes).sort(), ['200', '200 close', 'ECONNREFUSED'], JSON.stringify(outcomes));
    assert.equal(outcomes.ECONNREFUSED, CLIENTS);
  });
});
