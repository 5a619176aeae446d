/**
 * Generators for fuzzing the intake routes: a seeded PRNG, valid alert bodies in both accepted
 * shapes (grown from the upstream samples in ../shared), and mutations of them, from wrong types
 * to truncated JSON, invalid UTF-8, huge strings, deep nesting and prototype-pollution keys.
 *
 * Every body is generated from its own seed (derived from the run's seed, the route and the
 * body's index), so a failing body is regenerated alone: `generateBody(seeds, options, bodySeed(runSeed, route, index))`.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { dryRunSubmitter } from '../../src/kube/client.js';
import { createMetrics } from '../../src/pipeline/metrics.js';
import type { RuleSet } from '../../src/rules/types.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { rulesFrom, TEST_RULES } from './app.js';
import { sharedPath } from './argo-schema.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** mulberry32: tiny, fast and good enough to pick mutations; not for anything secret. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [0, maxExclusive). */
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((sum, [weight]) => sum + weight, 0);
    let roll = this.next() * total;
    for (const [weight, choice] of choices) {
      roll -= weight;
      if (roll < 0) return choice;
    }
    const last = choices[choices.length - 1];
    if (last === undefined) throw new Error('weighted pick from an empty list');
    return last[1];
  }
}

/** The run's seed: FUZZ_SEED when set (to replay a run), else a fresh random one. */
export function fuzzSeed(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FUZZ_SEED;
  if (raw === undefined || raw === '') return randomInt(2 ** 32 - 1);
  if (!/^\d+$/.test(raw) || Number(raw) > 0xffffffff)
    throw new Error(`FUZZ_SEED must be a whole number below 2^32, got "${raw}"`);
  return Number(raw);
}

/** The seed of one body: a hash of the run's seed, the stream (route) and the body's index. */
export function bodySeed(runSeed: number, stream: number, index: number): number {
  let h =
    Math.imul(runSeed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35) ^ Math.imul(index + 1, 0x27d4eb2f);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Valid bodies of both shapes, read from the upstream samples; mutations start from these. */
export interface SeedBodies {
  webhooks: JsonObject[];
  postables: Json[][];
}

const SAMPLES_UPSTREAM =
  'prometheus/alertmanager 68fb2d5759b3a92c0bb2a1a13d4ef7ff5b06256d shapes (see shared/alertmanager/samples/README.md)';

function readSample(relative: string, upstream: string): unknown {
  return JSON.parse(readFileSync(sharedPath(`alertmanager/${relative}`, upstream), 'utf8'));
}

export function loadSeedBodies(): SeedBodies {
  const webhooks = [
    readSample(
      'captured/am-0.25-webhook-firing.json',
      'a webhook body captured from Alertmanager 0.25 (shared/alertmanager/captured)',
    ),
    readSample('samples/authored-from-spec__firing-2-alerts-loki.json', SAMPLES_UPSTREAM),
    readSample('samples/authored-from-spec__resolved-2-alerts-loki.json', SAMPLES_UPSTREAM),
    readSample('samples/authored-from-spec__firing-truncated-loki.json', SAMPLES_UPSTREAM),
  ] as JsonObject[];
  const postables = [
    readSample('samples/authored-from-spec__loki-ruler-to-am-postable-alerts.json', SAMPLES_UPSTREAM),
  ] as Json[][];
  return { webhooks, postables };
}

// ---------------------------------------------------------------------------------------------
// Valid alerts. The values are chosen so that every rule of TEST_RULES matches some of them.

const ALERTNAMES = [
  'KubePodCrashLooping',
  'KubePodNotReady',
  'DatabaseDown',
  'ContainerErrorLogBurst',
  'GoPanicInLogs',
  'Watchdog',
];
const NAMESPACES = ['shop', 'payments', 'kube-system', 'monitoring', 'shop-cart', 'default'];
const PODS = [
  'checkout-7d9f8b6c5-x2x9k',
  'db-0',
  'cart-6d5f8c7b9-2lq4w',
  'node-exporter-bcdfg',
  'api',
  'migrate-28391234-k8s9p',
];
const CONTAINERS = ['checkout', 'api', 'db', 'cart'];
const SEVERITIES = ['critical', 'warning', 'info'];
const DESCRIPTIONS = [
  'Pod is crash looping',
  'back-off restarting failed container: CrashLoopBackOff',
  'database connection failed after 3 retries',
  'please restart the api',
  'OOMKilled',
  '37 error lines in the last 5 minutes (threshold > 20).',
  '',
];
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Values that must never reach a Workflow as namespace, pod or container. */
export const HOSTILE_TARGETS: readonly string[] = [
  'a;curl x|sh',
  '$(id)',
  '`id`',
  '{{workflow.name}}',
  '{{=sprig.env("HOME")}}',
  'checkout\nrm -rf /',
  'checkout\r\n',
  '../../etc/passwd',
  "' OR 1=1 --",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, as an attacker would send it.
  '${IFS}cat${IFS}/etc/shadow',
  'Checkout',
  '-checkout',
  'checkout-',
  ' checkout',
  'shop\u0000',
  'ѕhop', // Cyrillic ѕ
  '\u202egnp.exe',
  'a'.repeat(64),
  'a'.repeat(254),
  'x'.repeat(5000),
  '*',
  '',
];

const UNICODE = [
  '🔥💥🚨',
  '👩‍👩‍👧‍👦',
  'שלום עולם', // RTL
  '\u202e\u202d\u200f',
  'مرحبا',
  'a\u0000b',
  '\u0000',
  '\ud800', // lone high surrogate
  '\udfff', // lone low surrogate
  'x\ud83dy', // broken pair
  '\ufeff',
  'e\u0301\u0301\u0301',
  '\u200b\u200c\u200d',
  'ＦＵＬＬＷＩＤＴＨ',
  'İıſK',
  '\u2028\u2029',
  '\\u0000',
  '"\'\\<>&',
  '\u001b[31mred\u001b[0m',
];

/** Keys that name Object.prototype members: code that reads labels[name] without hasOwn would find functions. */
const PROTOTYPE_KEYS = [
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '__defineGetter__',
  'toJSON',
  'prototype',
  'isPrototypeOf',
];

function isoAround(random: Random, now: number): string {
  return new Date(now + (random.int(7200) - 3600) * 1000).toISOString();
}

function validLabels(random: Random): Record<string, string> {
  const labels: Record<string, string> = { alertname: random.pick(ALERTNAMES) };
  if (random.chance(0.9)) labels.namespace = random.pick(NAMESPACES);
  if (random.chance(0.85)) labels.pod = random.pick(PODS);
  if (random.chance(0.6)) labels.container = random.pick(CONTAINERS);
  if (random.chance(0.7)) labels.severity = random.pick(SEVERITIES);
  if (random.chance(0.3)) labels.team = random.pick(['shop', 'payments', 'platform']);
  if (random.chance(0.1)) labels.deployment = random.pick(['checkout', 'api']);
  return labels;
}

function validAnnotations(random: Random): Record<string, string> {
  const annotations: Record<string, string> = {};
  if (random.chance(0.8)) annotations.description = random.pick(DESCRIPTIONS);
  if (random.chance(0.6))
    annotations.summary = random.pick(['crashloop', 'db down', 'logging errors', 'please restart']);
  if (random.chance(0.3)) annotations.runbook_url = 'https://runbooks.example.com/kube-sentinel/x';
  return annotations;
}

function webhookAlert(random: Random, now: number): JsonObject {
  const resolved = random.chance(0.15);
  const alert: JsonObject = {
    status: resolved ? 'resolved' : 'firing',
    labels: validLabels(random),
    annotations: validAnnotations(random),
    startsAt: isoAround(random, now),
    endsAt: resolved ? isoAround(random, now) : ZERO_TIME,
  };
  if (random.chance(0.5)) alert.generatorURL = 'http://prometheus.local/graph?g0.expr=up';
  if (random.chance(0.5))
    alert.fingerprint = random.chance(0.8)
      ? random
          .int(2 ** 32)
          .toString(16)
          .padStart(16, '0')
      : 'not-a-fingerprint';
  return alert;
}

function postableAlert(random: Random, now: number): JsonObject {
  const alert: JsonObject = { labels: validLabels(random) };
  if (random.chance(0.8)) alert.annotations = validAnnotations(random);
  if (random.chance(0.7)) alert.startsAt = isoAround(random, now);
  if (random.chance(0.5)) alert.endsAt = random.chance(0.3) ? ZERO_TIME : isoAround(random, now);
  if (random.chance(0.3)) alert.generatorURL = 'http://grafana.monitoring.svc:3000/explore';
  return alert;
}

function validWebhook(random: Random, seeds: SeedBodies, now: number): JsonObject {
  const body = structuredClone(random.pick(seeds.webhooks));
  if (random.chance(0.6)) body.alerts = Array.from({ length: 1 + random.int(4) }, () => webhookAlert(random, now));
  return body;
}

function validPostables(random: Random, seeds: SeedBodies, now: number): Json[] {
  if (random.chance(0.3)) return structuredClone(random.pick(seeds.postables));
  return Array.from({ length: 1 + random.int(4) }, () => postableAlert(random, now));
}

// ---------------------------------------------------------------------------------------------
// Raw JSON fragments: what JSON.stringify cannot produce (duplicate keys, __proto__ members,
// 10,000-deep nesting) goes in as a placeholder and is spliced into the text afterwards.

class RawFragments {
  private readonly fragments = new Map<string, string>();

  /** A placeholder value whose JSON text becomes `text`. */
  value(text: string): Json {
    const placeholder = `\u0000raw-value-${this.fragments.size}\u0000`;
    this.fragments.set(JSON.stringify(placeholder), text);
    return placeholder;
  }

  /** Adds a placeholder member to `object` whose JSON text becomes `member` (e.g. `"a":1,"a":2`). */
  member(object: JsonObject, member: string): void {
    const key = `\u0000raw-member-${this.fragments.size}\u0000`;
    object[key] = 0;
    this.fragments.set(`${JSON.stringify(key)}:0`, member);
  }

  stringify(body: Json): string {
    let text = JSON.stringify(body);
    for (const [placeholder, fragment] of this.fragments) text = text.split(placeholder).join(fragment);
    return text;
  }
}

/** Where a value sits: its parent and key, so a mutation can replace or delete it. */
interface Slot {
  parent: JsonObject | Json[];
  key: string | number;
}

/** Every slot under root, breadth first, up to a bound so that bodies of many alerts stay cheap. */
function slotsOf(root: Json, limit = 400): Slot[] {
  const slots: Slot[] = [];
  const queue: Json[] = [root];
  while (queue.length > 0 && slots.length < limit) {
    const node = queue.shift();
    if (Array.isArray(node)) {
      node.forEach((child, key) => {
        slots.push({ parent: node, key });
        queue.push(child);
      });
    } else if (node !== null && typeof node === 'object') {
      for (const [key, child] of Object.entries(node)) {
        slots.push({ parent: node, key });
        queue.push(child);
      }
    }
  }
  return slots;
}

function read(slot: Slot): Json | undefined {
  return Array.isArray(slot.parent) ? slot.parent[slot.key as number] : (slot.parent as JsonObject)[slot.key as string];
}

function write(slot: Slot, value: Json): void {
  if (Array.isArray(slot.parent)) slot.parent[slot.key as number] = value;
  else (slot.parent as JsonObject)[slot.key as string] = value;
}

function objectsIn(root: Json): JsonObject[] {
  const objects: JsonObject[] = [];
  if (root !== null && typeof root === 'object' && !Array.isArray(root)) objects.push(root);
  for (const slot of slotsOf(root)) {
    const value = read(slot);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) objects.push(value);
  }
  return objects;
}

/** The alerts of either shape, when the body still has them. */
function alertsIn(body: Json): JsonObject[] {
  const list = Array.isArray(body) ? body : body !== null && typeof body === 'object' ? body.alerts : undefined;
  if (!Array.isArray(list)) return [];
  return list.filter((a): a is JsonObject => a !== null && typeof a === 'object' && !Array.isArray(a));
}

function labelsOf(alert: JsonObject): JsonObject {
  const labels = alert.labels;
  if (labels !== null && typeof labels === 'object' && !Array.isArray(labels)) return labels;
  const fresh: JsonObject = { alertname: 'Fuzz' };
  alert.labels = fresh;
  return fresh;
}

const WRONG_TYPES: readonly Json[] = [
  0,
  -1,
  1.5,
  1e308,
  -0,
  // biome-ignore lint/correctness/noPrecisionLoss: a number JSON carries but a double cannot hold exactly.
  12345678901234567890,
  true,
  false,
  null,
  [],
  [1, 'a'],
  {},
  { a: 'b' },
  '',
];

function deepText(random: Random): string {
  const depth = random.chance(0.9) ? 10_000 : 100_000;
  switch (random.int(3)) {
    case 0:
      return '['.repeat(depth) + ']'.repeat(depth);
    case 1:
      return `${'{"a":'.repeat(depth)}"crash loop"${'}'.repeat(depth)}`;
    default:
      return `${'[{"a":'.repeat(depth / 2)}1${'}]'.repeat(depth / 2)}`;
  }
}

function hugeString(random: Random): string {
  const size = 100_000;
  switch (random.int(4)) {
    case 0:
      return `${'a'.repeat(size)}!`;
    case 1:
      return 'crash loop '.repeat(size / 11);
    case 2:
      return '🔥'.repeat(size / 2);
    default:
      return 'x'.repeat(size);
  }
}

type TreeMutation = (body: { root: Json }, random: Random, raw: RawFragments, now: number) => string;

const treeMutations: readonly (readonly [number, string, TreeMutation])[] = [
  [
    12,
    'wrong-type',
    (body, random) => {
      const slot = random.pick([{ parent: body as unknown as JsonObject, key: 'root' }, ...slotsOf(body.root)]);
      write(slot, structuredClone(random.pick(WRONG_TYPES)));
      return `wrong-type at ${String(slot.key)}`;
    },
  ],
  [
    10,
    'number-for-string',
    (body, random) => {
      const strings = slotsOf(body.root).filter((slot) => typeof read(slot) === 'string');
      if (strings.length === 0) return 'number-for-string (none)';
      const slot = random.pick(strings);
      // biome-ignore lint/correctness/noPrecisionLoss: past 2^53 on purpose.
      write(slot, random.pick([0, 42, -7, 3.14, 1e21, 9007199254740993]));
      return `number-for-string at ${String(slot.key)}`;
    },
  ],
  [
    10,
    'missing-field',
    (body, random) => {
      const objects = objectsIn(body.root).filter((o) => Object.keys(o).length > 0);
      if (objects.length === 0) return 'missing-field (none)';
      const object = random.pick(objects);
      const key = random.pick(Object.keys(object));
      delete object[key];
      return `missing-field ${key}`;
    },
  ],
  [
    10,
    'extra-field',
    (body, random) => {
      const objects = objectsIn(body.root);
      if (objects.length === 0) return 'extra-field (none)';
      const key = random.pick([
        ...PROTOTYPE_KEYS,
        'notification_reason',
        'routeLabels',
        'x-unknown',
        '',
        ' ',
        'ключ',
        '🔑',
        'a.b/c~d',
      ]);
      random.pick(objects)[key] = random.chance(0.6)
        ? random.pick(['crash loop', 'x', ''])
        : structuredClone(random.pick(WRONG_TYPES));
      return `extra-field ${JSON.stringify(key)}`;
    },
  ],
  [
    10,
    'unicode',
    (body, random) => {
      const strings = slotsOf(body.root).filter((slot) => typeof read(slot) === 'string');
      if (strings.length === 0) return 'unicode (none)';
      const slot = random.pick(strings);
      const text = Array.from({ length: 1 + random.int(3) }, () => random.pick(UNICODE)).join(
        random.pick(['', ' ', '-']),
      );
      write(slot, random.chance(0.5) ? text : `${String(read(slot))}${text}`);
      return `unicode at ${String(slot.key)}`;
    },
  ],
  [
    12,
    'hostile-target',
    (body, random) => {
      const alerts = alertsIn(body.root);
      if (alerts.length === 0) return 'hostile-target (no alerts)';
      const alert = random.pick(alerts);
      const labels = labelsOf(alert);
      const names = ['namespace', 'pod', 'container'].filter(() => random.chance(0.5));
      if (names.length === 0) names.push(random.pick(['namespace', 'pod', 'container']));
      for (const name of names) labels[name] = random.pick(HOSTILE_TARGETS);
      // Make a rule match, so the hostile value reaches rendering rather than stopping at no_match.
      if (random.chance(0.8)) {
        alert.annotations = {
          description: random.pick(['Pod is crash looping', 'database connection failed', 'please restart']),
          summary: random.pick(HOSTILE_TARGETS),
        };
      }
      if (random.chance(0.3)) labels.severity = 'critical';
      return `hostile-target ${names.join('+')}`;
    },
  ],
  [
    1.2,
    'huge-string',
    (body, random) => {
      const alerts = alertsIn(body.root);
      const strings = slotsOf(body.root).filter((slot) => typeof read(slot) === 'string');
      if (alerts.length > 0 && random.chance(0.7)) {
        const alert = random.pick(alerts);
        let where = labelsOf(alert);
        if (!random.chance(0.5)) {
          alert.annotations = { description: 'crash loop' };
          where = alert.annotations;
        }
        const key = random.pick(['alertname', 'namespace', 'pod', 'container', 'description', 'summary', 'zz-extra']);
        where[key] = hugeString(random);
        return `huge-string ${key}`;
      }
      if (strings.length === 0) return 'huge-string (none)';
      const slot = random.pick(strings);
      write(slot, hugeString(random));
      return `huge-string at ${String(slot.key)}`;
    },
  ],
  [
    2,
    'deep-nesting',
    (body, random, raw) => {
      const alerts = alertsIn(body.root);
      const where = random.int(3);
      if (where === 0 && alerts.length > 0) {
        const alert = random.pick(alerts);
        alert.annotations = { description: raw.value(deepText(random)) };
        return 'deep-nesting in annotations';
      }
      if (where === 1 && alerts.length > 0) {
        random.pick(alerts)['x-extra'] = raw.value(deepText(random));
        return 'deep-nesting in an unknown alert field';
      }
      body.root = raw.value(deepText(random));
      return 'deep-nesting at top level';
    },
  ],
  [
    5,
    'duplicate-key',
    (body, random, raw) => {
      const alerts = alertsIn(body.root);
      const object = alerts.length > 0 ? labelsOf(random.pick(alerts)) : random.pick([...objectsIn(body.root), {}]);
      const key = random.pick(['pod', 'namespace', 'alertname', 'container', 'status', 'labels']);
      raw.member(
        object,
        `${JSON.stringify(key)}:"checkout",${JSON.stringify(key)}:${JSON.stringify(random.pick(HOSTILE_TARGETS))}`,
      );
      return `duplicate-key ${key}`;
    },
  ],
  [
    5,
    'prototype-key',
    (body, random, raw) => {
      const objects = objectsIn(body.root);
      const object = objects.length > 0 ? random.pick(objects) : undefined;
      const member = random.pick([
        '"__proto__":{"polluted":"yes"}',
        '"\\u005f\\u005fproto__":{"polluted":"yes"}',
        '"__proto__":"yes"',
        '"constructor":{"prototype":{"polluted":"yes"}}',
        '"\\u0063onstructor":{"prototype":{"polluted":"yes"}}',
        '"prototype":{"polluted":"yes"}',
        '"__proto__":[{"polluted":"yes"}]',
      ]);
      if (object) raw.member(object, member);
      else body.root = raw.value(`{${member},"alerts":[]}`);
      return `prototype-key ${member.slice(0, 20)}`;
    },
  ],
  [
    0.3,
    'many-alerts',
    (body, random, _raw, now) => {
      const count = 200 + random.int(800);
      if (Array.isArray(body.root)) body.root = Array.from({ length: count }, () => postableAlert(random, now));
      else if (body.root !== null && typeof body.root === 'object')
        body.root.alerts = Array.from({ length: count }, () => webhookAlert(random, now));
      return `many-alerts ${count}`;
    },
  ],
  [
    3,
    'shape-swap',
    (body, random, _raw, now) => {
      body.root = Array.isArray(body.root)
        ? { version: '4', alerts: Array.from({ length: 1 + random.int(2) }, () => postableAlert(random, now)) }
        : Array.from({ length: 1 + random.int(2) }, () => webhookAlert(random, now));
      return 'shape-swap';
    },
  ],
  [
    3,
    'empty-container',
    (body, random) => {
      const alerts = alertsIn(body.root);
      const choice = random.int(4);
      if (choice === 0 && alerts.length > 0) random.pick(alerts).labels = {};
      else if (choice === 1) body.root = Array.isArray(body.root) ? [] : { alerts: [] };
      else if (choice === 2) body.root = Array.isArray(body.root) ? [{}] : {};
      else body.root = Array.isArray(body.root) ? [{ labels: {} }] : { alerts: [{}] };
      return `empty-container ${choice}`;
    },
  ],
];

// ---------------------------------------------------------------------------------------------
// Byte-level mutations and content types.

const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0x80], // overlong NUL
  [0xed, 0xa0, 0x80], // a UTF-16 surrogate encoded as UTF-8
  [0xe2, 0x82], // truncated sequence
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0x80, 0x80, 0x80],
];

const NOT_JSON = [
  '<alerts/>',
  'alertname=KubePodCrashLooping',
  'NaN',
  'undefined',
  '1e999',
  '{alerts:[]}',
  "{'alerts':[]}",
  '[,]',
  '{"alerts":[],}',
  '\u0000',
  '--\r\n',
];

const CONTENT_TYPES: readonly (readonly [number, string | undefined])[] = [
  [72, 'application/json'],
  [8, 'application/json; charset=utf-8'],
  [2, 'Application/JSON'],
  [4, undefined],
  [4, 'text/plain'],
  [2, 'application/x-www-form-urlencoded'],
  [2, 'multipart/form-data; boundary=x'],
  [2, 'application/xml'],
  [1, 'application/json-patch+json'],
  [1, ';;;'],
  [1, 'application/jsonx'],
  [1, ''],
];

/** application/json with any parameters, in any case (media types are case-insensitive). */
export function isJsonContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/json\s*(;|$)/i.test(contentType);
}

export interface FuzzBody {
  seed: number;
  /** What the generator did, in order: enough to see why a body failed without regenerating it. */
  mutations: string[];
  payload: Buffer;
  contentType: string | undefined;
  /** The status the spec requires for this body, where the generator can know it; otherwise any of 200, 400, 413, 415. */
  expectedStatus?: 200 | 400 | 413 | 415;
}

export interface GenerateOptions {
  /** Which shape the route expects: a bare valid body of it must be decided (200). */
  accepts: 'webhook' | 'postable' | 'either';
  bodyLimitBytes: number;
  /** Alert timestamps are generated around this instant (the app's injected clock). */
  now: number;
}

export function generateBody(seeds: SeedBodies, options: GenerateOptions, seed: number): FuzzBody {
  const random = new Random(seed);
  const shape = options.accepts === 'either' ? random.pick(['webhook', 'postable'] as const) : options.accepts;
  const body: { root: Json } = {
    root: shape === 'webhook' ? validWebhook(random, seeds, options.now) : validPostables(random, seeds, options.now),
  };
  const raw = new RawFragments();
  const mutations: string[] = [];

  if (!random.chance(0.12)) {
    const count =
      1 +
      random.weighted([
        [6, 0],
        [3, 1],
        [1, 2],
      ] as const);
    for (let i = 0; i < count; i++) {
      const mutate = random.weighted(treeMutations.map(([weight, , mutation]) => [weight, mutation] as const));
      mutations.push(mutate(body, random, raw, options.now));
    }
  }
  let payload = Buffer.from(raw.stringify(body.root), 'utf8');

  let truncated = false;
  const byteMutation = random.weighted([
    [80, 'none'],
    [10, 'truncate'],
    [3, 'invalid-utf8'],
    [0.4, 'oversize'],
    [1, 'bom'],
    [2, 'empty'],
    [2, 'not-json'],
  ] as const);
  switch (byteMutation) {
    case 'truncate': {
      const at = 1 + random.int(Math.max(1, payload.length - 1));
      if (at < payload.length) {
        payload = payload.subarray(0, at);
        truncated = true;
        mutations.push(`truncate at byte ${at}`);
      }
      break;
    }
    case 'invalid-utf8': {
      // Inside a string value is the interesting place: the JSON stays valid, the text does not.
      const quotes = [...payload.keys()].filter((i) => payload[i] === 0x22);
      const at = quotes.length > 0 && random.chance(0.8) ? random.pick(quotes) + 1 : random.int(payload.length + 1);
      const bytes = random.pick(INVALID_UTF8);
      payload = Buffer.concat([payload.subarray(0, at), Buffer.from(bytes), payload.subarray(at)]);
      mutations.push(`invalid-utf8 ${bytes.map((b) => b.toString(16)).join(' ')} at byte ${at}`);
      break;
    }
    case 'oversize': {
      const over = options.bodyLimitBytes + 1 + random.int(64 * 1024);
      const text = payload.toString('utf8');
      // Either a valid JSON body that is simply too big, or padding after it.
      payload = random.chance(0.5)
        ? Buffer.from(`{"alerts":[{"status":"firing","labels":{"alertname":"${'a'.repeat(over)}"}}]}`)
        : Buffer.concat([Buffer.from(text), Buffer.alloc(Math.max(0, over - payload.length), 0x20)]);
      mutations.push(`oversize ${payload.length} bytes`);
      break;
    }
    case 'bom':
      payload = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), payload]);
      mutations.push('bom');
      break;
    case 'empty':
      payload = Buffer.alloc(0);
      mutations.push('empty body');
      break;
    case 'not-json':
      payload = Buffer.from(random.pick(NOT_JSON));
      mutations.push(`not-json ${JSON.stringify(payload.toString('utf8'))}`);
      break;
    case 'none':
      break;
  }

  const contentType = random.weighted(CONTENT_TYPES);
  if (contentType !== 'application/json')
    mutations.push(`content-type ${contentType === undefined ? '(none)' : JSON.stringify(contentType)}`);

  let expectedStatus: FuzzBody['expectedStatus'];
  if (contentType === undefined && payload.length > 0) expectedStatus = 415;
  else if (isJsonContentType(contentType)) {
    if (payload.length > options.bodyLimitBytes) expectedStatus = 413;
    else if (truncated || payload.length === 0) expectedStatus = 400;
    else if (mutations.every((m) => m.startsWith('content-type'))) expectedStatus = 200;
  }
  return { seed, mutations, payload, contentType, ...(expectedStatus ? { expectedStatus } : {}) };
}

// ---------------------------------------------------------------------------------------------

export interface FuzzApp {
  app: ReturnType<typeof buildApp>;
  store: MemoryCooldownStore;
  clock: { now: number };
  config: Config;
  /** Log lines written so far; their text is not kept. */
  logLines: () => number;
}

/**
 * testApp() without keeping log lines: a fuzz run writes hundreds of thousands of them (some
 * carrying 100 KB label values), and keeping them would grow the heap with the run and hide or
 * fake a leak. Everything else is as in testApp: the real buildApp, an in-memory store, dry-run,
 * an injected clock, TEST_RULES unless rules are given.
 */
export async function fuzzApp(options: { rules?: RuleSet } = {}): Promise<FuzzApp> {
  const clock = { now: Date.parse('2026-11-26T12:00:00Z') };
  let lines = 0;
  const logger = pino(
    { level: 'debug' },
    {
      write: () => {
        lines++;
      },
    },
  );
  const config = { ...loadConfig([], {}), replica: 'fuzz' };
  const store = new MemoryCooldownStore({ now: () => clock.now });
  const ruleSet = options.rules ?? (await rulesFrom(TEST_RULES));
  const app = buildApp(config, {
    rules: () => ruleSet,
    store,
    submitter: dryRunSubmitter,
    metrics: createMetrics({ defaults: false }),
    logger,
    now: () => clock.now,
  });
  return { app, store, clock, config, logLines: () => lines };
}
