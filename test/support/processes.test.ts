import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_KEPT, startProcess } from './processes.js';

describe('startProcess output', () => {
  it('keeps the last whole lines of a long output and says how much was dropped', async () => {
    // 30,000 lines of 100 characters: 3 MB, past what is kept.
    const script = `for (let i = 0; i < 30000; i++) process.stdout.write(String(i).padStart(99, '.') + '\\n');`;
    const child = startProcess(process.execPath, ['-e', script]);
    assert.equal(await child.exited, 0);
    const output = child.output();
    const [notice, first] = output.split('\n');
    assert.match(notice ?? '', /^\[\d+ characters of earlier output dropped\]$/);
    const dropped = Number(/\d+/.exec(notice ?? '')?.[0]);
    assert.equal(dropped % 100, 0, 'whole lines are dropped');
    assert.equal(first, String(dropped / 100).padStart(99, '.'));
    assert.ok(output.length < MAX_KEPT);
    assert.ok(output.endsWith(`${'29999'.padStart(99, '.')}\n`));
  });
});
