/**
 * kube-sentinel pauses pointed at something that answers 200 with JSON that is not a list of
 * pauses (another service behind --server, a proxy's health page) exits 1 with one line naming the
 * server, never a TypeError and a stack trace.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { listPauses } from '../../src/commands/pauses.js';

describe('kube-sentinel pauses against a server that is not a receiver', () => {
  let server: Server;
  let url: string;

  before(async () => {
    server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"status":"ok"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('exits 1 naming the server, rather than throwing', async () => {
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
    try {
      const code = await listPauses([], { KUBE_SENTINEL_SERVER: url });
      assert.equal(code, 1);
      assert.match(written.join(''), new RegExp(url.replace(/[.]/g, '\\.')));
    } finally {
      process.stderr.write = write;
    }
  });
});
