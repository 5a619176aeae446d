/**
 * `npm ci` on the Node.js the README names warns about no package (EBADENGINE): every package of
 * package-lock.json admits the project's own minimum (package.json `engines.node`) and the image's
 * Node (the Dockerfile's FROM). The override of light-my-request's cookie (package.json
 * `overrides`: cookie 2 wants Node 22) is exercised through the code that uses it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { REPO_ROOT } from './support/receiver.js';

type Version = readonly [number, number, number];

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** A whole or partial version (`20`, `10.*`, `4.x`, `20.19.0`): the given numbers, the rest wildcards. */
function partial(text: string): number[] {
  const parts = text.split('.');
  const numbers: number[] = [];
  for (const part of parts) {
    if (part === 'x' || part === 'X' || part === '*') break;
    if (!/^\d+$/.test(part)) throw new Error(`not a version: ${JSON.stringify(text)}`);
    numbers.push(Number(part));
  }
  if (numbers.length > 3) throw new Error(`not a version: ${JSON.stringify(text)}`);
  return numbers;
}

function padded(numbers: readonly number[]): Version {
  return [numbers[0] ?? 0, numbers[1] ?? 0, numbers[2] ?? 0];
}

/** The first version past a partial one (`20` → 21.0.0, `20.19` → 20.20.0). */
function bumped(numbers: readonly number[]): Version {
  const next = [...numbers];
  next[next.length - 1] = (next[next.length - 1] ?? 0) + 1;
  return padded(next);
}

/** One comparator of a range (`>=20.19.0`, `^18`, `20`, `*`); throws on syntax it does not know. */
function admitsComparator(token: string, version: Version): boolean {
  const match = /^(>=|<=|>|<|=|\^)?(.*)$/.exec(token);
  const operator = match?.[1] ?? '';
  const numbers = partial(match?.[2] ?? '');
  if (numbers.length === 0) return operator === '' || operator === '>=' || operator === '=';
  const low = padded(numbers);
  switch (operator) {
    case '>=':
      return compare(version, low) >= 0;
    case '>':
      return numbers.length === 3 ? compare(version, low) > 0 : compare(version, bumped(numbers)) >= 0;
    case '<':
      return compare(version, low) < 0;
    case '<=':
      return numbers.length === 3 ? compare(version, low) <= 0 : compare(version, bumped(numbers)) < 0;
    case '^': {
      const significant = numbers.findIndex((n) => n !== 0);
      const upTo = significant === -1 ? numbers.length : significant + 1;
      return compare(version, low) >= 0 && compare(version, bumped(numbers.slice(0, upTo))) < 0;
    }
    default:
      return compare(version, low) >= 0 && (numbers.length === 3 || compare(version, bumped(numbers)) < 0);
  }
}

/** Whether an npm `engines` range (`^20.19.0 || >=22`, `>= 10.16.0`, `10.* || >= 12.*`) admits VERSION. */
function admits(range: string, version: Version): boolean {
  return range.split('||').some((set) =>
    set
      .trim()
      .replace(/(>=|<=|>|<|=|\^)\s+/g, '$1')
      .split(/\s+/)
      .every((token) => admitsComparator(token, version)),
  );
}

function versionOf(text: string): Version {
  const numbers = partial(text);
  assert.equal(numbers.length, 3, `not a whole version: ${text}`);
  return padded(numbers);
}

const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
};
const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

describe('the engine range check these tests rely on', () => {
  const cases: ReadonlyArray<[string, string, boolean]> = [
    ['>=22', '20.19.0', false],
    ['>=22', '22.0.0', true],
    ['>= 20.16.0', '20.19.0', true],
    ['>= 20.16.0', '20.15.9', false],
    ['^20.19.0 || ^22.12.0 || >=23', '20.19.0', true],
    ['^20.19.0 || ^22.12.0 || >=23', '20.18.3', false],
    ['^20.19.0 || ^22.12.0 || >=23', '21.0.0', false],
    ['^20.19.0 || ^22.12.0 || >=23', '26.10.0', true],
    ['20 || >=22', '20.0.0', true],
    ['20 || >=22', '21.7.3', false],
    ['10.* || >= 12.*', '11.0.0', false],
    ['4.x || >=6.0.0', '4.9.1', true],
    ['>=16 || 14 >=14.17', '14.16.0', false],
    ['>=16 || 14 >=14.17', '14.17.0', true],
    ['*', '0.0.1', true],
    ['^0.4.2', '0.5.0', false],
  ];
  for (const [range, version, expected] of cases) {
    it(`${expected ? 'admits' : 'refuses'} ${version} for ${range}`, () => {
      assert.equal(admits(range, versionOf(version)), expected);
    });
  }

  it('throws on a range it cannot read rather than passing it', () => {
    assert.throws(() => admits('~1.2.3', [1, 2, 3]), /not a version/);
  });
});

describe('package engines', () => {
  const minimum = /^>=\s*(\d+\.\d+\.\d+)$/.exec(packageJson.engines.node)?.[1];
  const image = /^FROM node:(\d+\.\d+\.\d+)/m.exec(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'))?.[1];

  it('names a whole minimum Node.js version, the one the README names', () => {
    assert.ok(minimum, `package.json engines.node ${packageJson.engines.node} is not >=X.Y.Z`);
    const [major, minor] = versionOf(minimum);
    assert.match(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'), new RegExp(`Node\\.js ${major}\\.${minor}\\b`));
  });

  for (const [what, version] of [
    ['the minimum of package.json', minimum],
    ["the image's", image],
  ] as const) {
    it(`are all satisfied by ${what} Node.js (${version}): npm ci warns about none`, () => {
      assert.ok(version, `no ${what} Node.js version found`);
      const refusing = Object.entries(lock.packages)
        .filter(([path]) => path !== '')
        .flatMap(([path, entry]) => {
          const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
          return range === undefined || admits(range, versionOf(version))
            ? []
            : [`${path.replace(/^.*node_modules\//, '')}@${entry.version}: node ${range}`];
        });
      assert.deepEqual(refusing, []);
    });
  }

  it("keeps fastify.inject's cookies working with the cookie version light-my-request is given", async () => {
    const app = Fastify();
    app.get('/', async (request) => ({ cookie: request.headers.cookie ?? null }));
    try {
      const response = await app.inject({ method: 'GET', url: '/', cookies: { session: 'a b;c', plain: 'x' } });
      assert.deepEqual(response.json(), { cookie: 'session=a%20b%3Bc; plain=x' });
    } finally {
      await app.close();
    }
  });
});
