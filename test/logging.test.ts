import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger, TurnBatchedStream } from '../src/logging.js';

/** One event-loop turn. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

function recordingTarget() {
  const writes: string[] = [];
  const flushed: string[] = [];
  return {
    writes,
    flushed,
    write: (chunk: string) => writes.push(chunk) > 0,
    flushSync: () => {
      flushed.push('flushSync');
    },
  };
}

describe('the log stream', () => {
  it('hands the lines of one turn to the destination as one write, in order', async () => {
    const target = recordingTarget();
    const stream = new TurnBatchedStream(target, -1);
    for (let i = 0; i < 20; i++) stream.write(`{"n":${i}}\n`);
    assert.deepEqual(target.writes, [], 'nothing before the turn ends');
    await turn();
    assert.deepEqual(target.writes, [Array.from({ length: 20 }, (_, i) => `{"n":${i}}\n`).join('')]);
    stream.write('{"n":20}\n');
    await turn();
    assert.deepEqual(target.writes.slice(1), ['{"n":20}\n']);
  });

  it('at exit writes what the destination holds, then the lines of the unfinished turn, to the file', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ks-log-')), 'out.log');
    const fd = openSync(file, 'w');
    try {
      const target = recordingTarget();
      const stream = new TurnBatchedStream(target, fd);
      stream.write('{"last":1}\n');
      stream.write('{"last":2}\n');
      stream.flushSync();
      assert.deepEqual(target.flushed, ['flushSync'], "the destination's own buffer goes first");
      assert.equal(readFileSync(file, 'utf8'), '{"last":1}\n{"last":2}\n');
      assert.deepEqual(target.writes, [], 'not handed on asynchronously as well');
    } finally {
      closeSync(fd);
    }
  });
});

describe('createLogger', () => {
  it('writes pretty lines for a person at a terminal, in process', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ks-log-')), 'tty.log');
    const fd = openSync(file, 'w');
    try {
      const logger = await createLogger('info', { pretty: true, fd });
      logger.info({ rule: 'crashloop' }, 'kube-sentinel listening');
      const text = readFileSync(file, 'utf8');
      assert.match(text, /INFO.*kube-sentinel listening/);
      assert.match(text, /rule: "crashloop"/);
      assert.throws(() => JSON.parse(text), 'not a JSON line');
    } finally {
      closeSync(fd);
    }
  });
});
