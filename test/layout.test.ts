/**
 * The shape of src/: lower layers never import upward, and no file grows past what one reads
 * through. Each module's imports are read from its text.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from './support/receiver.js';

const SRC = join(REPO_ROOT, 'src');
const MAX_LINES = 400;

function sources(directory = SRC): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [relative(SRC, path)] : [];
  });
}

/** The project modules a file imports (static and dynamic), as paths relative to src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((match) => match[1] ?? '');
  return specifiers.map((specifier) =>
    relative(SRC, resolve(dirname(join(SRC, file)), specifier)).replace(/\.js$/, '.ts'),
  );
}

/** The layer of a module: what it may import is its own layer and those below. */
function layerOf(file: string): number {
  if (['alert.ts', 'decision.ts', 'pause.ts', 'throttle.ts', 'kube/workflow.ts', 'remediation/model.ts'].includes(file))
    return 0;
  if (/^(rules|stores|kube|escalation)\//.test(file)) return 1;
  // remediation/: the watcher and what it records and escalates, beside the pipeline it informs.
  if (/^(pipeline|remediation)\//.test(file)) return 2;
  if (file.startsWith('routes/')) return 3;
  // The composition: cli, server, app, config, logging, errors and the commands.
  return 4;
}

const LAYER_NAMES = [
  'alert.ts, decision.ts, pause.ts, throttle.ts and the models',
  'rules/, stores/, kube/, escalation/',
  'pipeline/, remediation/',
  'routes/',
  'the composition',
];

describe('src/', () => {
  const files = sources();

  it('is read as expected: every module is found, with its imports', () => {
    assert.ok(files.includes('pipeline/pipeline.ts') && files.includes('rules/load.ts'), files.join(', '));
    assert.ok(importsOf('pipeline/pipeline.ts').includes('pipeline/stage.ts'));
  });

  it('never imports upward: each layer builds only on its own and the ones below', () => {
    const upward = files.flatMap((file) =>
      importsOf(file)
        .filter((imported) => layerOf(imported) > layerOf(file))
        .map(
          (imported) =>
            `${file} (${LAYER_NAMES[layerOf(file)]}) imports ${imported} (${LAYER_NAMES[layerOf(imported)]})`,
        ),
    );
    assert.deepEqual(upward, []);
  });

  it(`keeps every file under ${MAX_LINES} lines`, () => {
    const long = files
      .map((file) => ({ file, lines: readFileSync(join(SRC, file), 'utf8').split('\n').length }))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ file, lines }) => `${file}: ${lines} lines`);
    assert.deepEqual(long, []);
  });
});
