/**
 * openapi.yaml against the code: it is strict YAML and a valid OpenAPI 3.0 document; every route
 * the app serves is documented, every documented route is served, and each request body, query
 * parameter and response is the route's own TypeBox schema, read the way OpenAPI 3.0 writes it
 * (descriptions and examples are the document's own); and what the app answers, for every route,
 * status and outcome, is what the document says.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv } from 'ajv';
import formats from 'ajv-formats';
import type { RouteOptions } from 'fastify';
import { type DocumentOptions, type ParseOptions, parseDocument, type SchemaOptions } from 'yaml';
import { buildPage } from '../scripts/build-page.mjs';
import { OPENAPI_PATH } from '../src/app.js';
import { ALL_OUTCOMES } from '../src/decision.js';
import { MAX_PAUSES } from '../src/routes/pauses.js';
import { RedisCooldownStore } from '../src/stores/redis.js';
import { firing, rulesFrom, scriptedSubmitter, testApp, webhook } from './support/app.js';
import { freePort } from './support/processes.js';

type Schema = Record<string, unknown>;

function isObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** As strict as the yaml package reads: every error and warning kept, a duplicate key an error. */
const STRICT: ParseOptions & DocumentOptions & SchemaOptions = { strict: true, uniqueKeys: true, prettyErrors: true };

function strictProblems(text: string): string[] {
  const parsed = parseDocument(text, STRICT);
  return [...parsed.errors, ...parsed.warnings].map((problem) => problem.message);
}

const TEXT = readFileSync(OPENAPI_PATH, 'utf8');
const parsed = parseDocument(TEXT, STRICT);
const document = (parsed.errors.length === 0 ? parsed.toJS() : {}) as Schema;

/** Follows `#/components/...` references through the document. */
function resolve(value: unknown): unknown {
  if (!isObject(value)) return value;
  const ref = value.$ref;
  if (typeof ref !== 'string') return value;
  let target: unknown = document;
  for (const part of ref.replace(/^#\//, '').split('/')) target = isObject(target) ? target[part] : undefined;
  assert.ok(target !== undefined, `openapi.yaml: ${ref} does not exist`);
  return resolve(target);
}

const IGNORED = new Set(['description', 'example', 'examples', 'title', '$id']);

/**
 * One canonical form for both sides: references resolved, allOf merged, oneOf read as anyOf, a
 * union of string constants as an enum, a union with null as nullable, TypeBox's records as
 * additionalProperties, open objects without `additionalProperties: true`, required as a set.
 */
function canonical(given: unknown): unknown {
  const value = resolve(given);
  if (Array.isArray(value)) return value.map(canonical);
  if (!isObject(value)) return value;
  let schema: Schema = {};
  for (const [key, entry] of Object.entries(value)) if (!IGNORED.has(key)) schema[key] = entry;

  if (Array.isArray(schema.allOf)) {
    const { allOf, ...rest } = schema;
    schema = rest;
    for (const part of allOf) {
      const merged = canonical(part) as Schema;
      for (const [key, entry] of Object.entries(merged)) {
        if (key === 'required') schema.required = [...((schema.required as string[]) ?? []), ...(entry as string[])];
        else if (key === 'properties') schema.properties = { ...(schema.properties as Schema), ...(entry as Schema) };
        else schema[key] = entry;
      }
    }
  }
  if (Array.isArray(schema.oneOf)) {
    schema.anyOf = schema.oneOf;
    delete schema.oneOf;
  }
  if ('const' in schema) {
    schema.enum = [schema.const];
    delete schema.const;
  }
  if (isObject(schema.patternProperties) && Object.keys(schema.patternProperties).join() === '^(.*)$') {
    schema.additionalProperties = schema.patternProperties['^(.*)$'];
    delete schema.patternProperties;
  }
  for (const [key, entry] of Object.entries(schema)) {
    if (key === 'properties' && isObject(entry)) {
      schema[key] = Object.fromEntries(Object.entries(entry).map(([name, property]) => [name, canonical(property)]));
    } else if (key !== 'enum' && key !== 'required' && key !== 'default') {
      schema[key] = canonical(entry);
    }
  }
  if (Array.isArray(schema.anyOf)) {
    let options = (schema.anyOf as Schema[]).flatMap((option) =>
      Array.isArray(option.anyOf) ? option.anyOf : [option],
    );
    const withoutNull = options.filter((option) => option.type !== 'null');
    if (withoutNull.length < options.length) {
      schema.nullable = true;
      options = withoutNull;
    }
    const enumOf = (option: Schema) => Object.keys(option).length === 2 && Array.isArray(option.enum) && option.type;
    if (options.length > 0 && options.every(enumOf) && new Set(options.map((o) => o.type)).size === 1) {
      delete schema.anyOf;
      schema.type = options[0]?.type;
      schema.enum = options.flatMap((option) => option.enum as unknown[]);
    } else if (options.length === 1) {
      delete schema.anyOf;
      Object.assign(schema, options[0]);
    } else schema.anyOf = options;
  }
  // OpenAPI 3.0 lists null among a nullable enum's values; TypeBox's union with null does not.
  if (schema.nullable === true && Array.isArray(schema.enum) && !schema.enum.includes(null)) {
    schema.enum = [...schema.enum, null];
  }
  if (schema.additionalProperties === true) delete schema.additionalProperties;
  if (Array.isArray(schema.required)) {
    if (schema.required.length === 0) delete schema.required;
    else schema.required = [...new Set(schema.required as string[])].sort();
  }
  return schema;
}

/** Where two canonical schemas first differ, or null. */
function difference(documented: unknown, served: unknown, at: string): string | null {
  if (isObject(documented) && isObject(served)) {
    for (const key of new Set([...Object.keys(documented), ...Object.keys(served)])) {
      const found = difference(documented[key], served[key], `${at}.${key}`);
      if (found) return found;
    }
    return null;
  }
  if (Array.isArray(documented) && Array.isArray(served) && documented.length === served.length) {
    for (const [i, entry] of documented.entries()) {
      const found = difference(entry, served[i], `${at}[${i}]`);
      if (found) return found;
    }
    return null;
  }
  return JSON.stringify(documented) === JSON.stringify(served)
    ? null
    : `${at}: openapi.yaml says ${JSON.stringify(documented)}, the code ${JSON.stringify(served)}`;
}

function assertSame(documented: unknown, served: unknown, where: string): void {
  const found = difference(canonical(documented), canonical(JSON.parse(JSON.stringify(served))), where);
  assert.equal(found, null, found ?? '');
}

interface ServedRoute {
  method: string;
  url: string;
  schema: { body?: unknown; querystring?: unknown; params?: unknown; response?: Record<string, unknown> };
}

async function servedRoutes(): Promise<ServedRoute[]> {
  const { app } = await testApp();
  const routes: ServedRoute[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      routes.push({
        method: method.toLowerCase(),
        // The wildcard of DELETE /v1/cooldowns/{key}, and named parameters (`:id`), as OpenAPI writes them.
        url: route.url.replace(/\/\*$/, '/{key}').replace(/:(\w+)/g, '{$1}'),
        schema: (route.schema ?? {}) as ServedRoute['schema'],
      });
    }
  });
  await app.ready();
  return routes;
}

function operation(route: ServedRoute): Schema {
  const path = (document.paths as Schema)[route.url];
  assert.ok(isObject(path), `openapi.yaml does not document ${route.url}`);
  const found = path[route.method];
  assert.ok(isObject(found), `openapi.yaml does not document ${route.method.toUpperCase()} ${route.url}`);
  return found;
}

/** The schema of an OpenAPI response or request body: its one media type's. */
function contentSchema(where: string, body: unknown): unknown {
  const content = (resolve(body) as Schema).content;
  assert.ok(isObject(content), `${where}: no content in openapi.yaml`);
  const [media] = Object.values(content);
  return (media as Schema).schema;
}

describe('openapi.yaml', async () => {
  const routes = await servedRoutes();

  it('is strict YAML: no error, no warning, no duplicate key', () => {
    assert.deepEqual(strictProblems(TEXT), []);
    assert.ok(isObject(document.paths), 'openapi.yaml has paths');
  });

  it('would be refused by that reading with an unquoted colon or a duplicate key', () => {
    // What broke every OpenAPI tool once: a plain scalar holding ": ".
    const unquoted = 'paths:\n  /x:\n    description: No status field: resolved when endsAt is set\n';
    assert.ok(strictProblems(unquoted).length > 0);
    assert.ok(strictProblems('a: 1\nb: 2\na: 3\n').some((message) => /unique/i.test(message)));
  });

  it('is a valid OpenAPI 3.0 document whose every $ref resolves', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    assert.equal(validator.version, '3.0');
    assert.doesNotThrow(() => validator.resolveRefs());
  });

  it('is served unchanged at GET /openapi.yaml', async () => {
    const { app } = await testApp();
    const res = await app.inject({ method: 'GET', url: '/openapi.yaml' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/yaml/);
    assert.equal(res.body, TEXT);
  });

  it('documents exactly the routes the receiver serves', () => {
    const documented = Object.entries(document.paths as Schema).flatMap(([url, methods]) =>
      Object.keys(methods as Schema).map((method) => `${method.toUpperCase()} ${url}`),
    );
    assert.deepEqual(documented.sort(), routes.map((r) => `${r.method.toUpperCase()} ${r.url}`).sort());
  });

  for (const route of routes) {
    const name = `${route.method.toUpperCase()} ${route.url}`;
    it(`gives ${name} the request and responses of its TypeBox schemas`, () => {
      const documented = operation(route);
      if (route.schema.body !== undefined) {
        assertSame(contentSchema(`${name} requestBody`, documented.requestBody), route.schema.body, `${name} body`);
      } else assert.equal(documented.requestBody, undefined, `${name} documents a body it does not take`);

      const query = isObject(route.schema.querystring) ? (route.schema.querystring.properties as Schema) : {};
      const all = ((documented.parameters as Schema[] | undefined) ?? []).map((p) => resolve(p) as Schema);
      const parameters = all.filter((p) => p.in === 'query');
      assert.deepEqual(
        all.filter((p) => p.in === 'path').map((p) => p.name),
        [...route.url.matchAll(/\{(\w+)\}/g)].map((match) => match[1]),
        `${name} path parameters`,
      );
      const params = isObject(route.schema.params) ? (route.schema.params.properties as Schema) : {};
      for (const parameter of all.filter((p) => p.in === 'path' && params[p.name as string] !== undefined)) {
        assertSame(parameter.schema, params[parameter.name as string], `${name} {${parameter.name}}`);
      }
      assert.deepEqual(parameters.map((p) => p.name).sort(), Object.keys(query).sort(), `${name} query parameters`);
      for (const parameter of parameters) {
        assertSame(parameter.schema, query[parameter.name as string], `${name} ?${parameter.name}`);
      }

      const responses = documented.responses as Schema;
      const served = route.schema.response ?? {};
      assert.deepEqual(Object.keys(responses).sort(), Object.keys(served).sort(), `${name} response codes`);
      for (const [code, schema] of Object.entries(served)) {
        assertSame(contentSchema(`${name} ${code}`, responses[code]), schema, `${name} ${code}`);
      }
    });
  }
});

/** The JSON pointer of a documented response's schema (through a `$ref` to components/responses), and the schema. */
function responseSchema(url: string, method: string, status: number): { pointer: string; schema: unknown } {
  const pointerPart = (part: string) => part.replaceAll('~', '~0').replaceAll('/', '~1');
  let pointer = `/paths/${pointerPart(url)}/${method}/responses/${status}`;
  const response = (((document.paths as Schema)[url] as Schema)[method] as Schema).responses as Schema;
  const given = response[String(status)];
  assert.ok(isObject(given), `openapi.yaml does not document ${status} for ${method.toUpperCase()} ${url}`);
  if (typeof given.$ref === 'string') pointer = given.$ref.replace(/^#/, '');
  const content = (resolve(given) as Schema).content as Schema;
  const [media] = Object.keys(content);
  return {
    pointer: `${pointer}/content/${pointerPart(media ?? '')}/schema`,
    schema: (content[media ?? ''] as Schema).schema,
  };
}

/** Every object schema that lists its properties allows no other: what is answered is documented. */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (!isObject(schema)) return schema;
  const copy = Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, closed(value)]));
  if (isObject(schema.properties) && !('additionalProperties' in schema)) copy.additionalProperties = false;
  return copy;
}

/**
 * The document as a validator reads it: ajv on the OpenAPI schema itself, `#/components/...`
 * references and all; and on its canonical form closed, so that no undocumented field slips out.
 */
function responseValidator() {
  const documented = new Ajv({ strict: true, allErrors: true });
  formats.default(documented);
  // The document's own fields are no schema keywords; the schemas under it are read strictly.
  documented.addVocabulary(['example', 'openapi', 'info', 'servers', 'security', 'paths', 'components']);
  documented.addSchema(document, 'openapi.yaml');
  const exact = new Ajv({ strict: false, allErrors: true });
  formats.default(exact);
  return (url: string, method: string, status: number, body: unknown): void => {
    const { pointer, schema } = responseSchema(url, method, status);
    const validate = documented.getSchema(`openapi.yaml#${pointer}`);
    assert.ok(validate, `${pointer} is not a schema`);
    const where = `${method.toUpperCase()} ${url} ${status}`;
    assert.ok(validate(body), `${where}: ${JSON.stringify(validate.errors)}\n${JSON.stringify(body)}`);
    const strict = exact.compile(closed(canonical(schema)) as Schema);
    assert.ok(strict(body), `${where} answers what openapi.yaml does not document: ${JSON.stringify(strict.errors)}`);
  };
}

interface Exchange {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  status: number;
  body: unknown;
}

describe('what the receiver answers', async () => {
  const check = responseValidator();
  const seen: Exchange[] = [];
  const outcomes = new Set<string>();
  const opened: { close(): Promise<unknown> }[] = [];
  after(async () => Promise.all(opened.map((closable) => closable.close())));
  const open = async (options: Parameters<typeof testApp>[0] = {}) => {
    const built = await testApp(options);
    opened.push(built.app);
    return built;
  };

  type Injectable = Awaited<ReturnType<typeof testApp>>['app'];
  async function exchange(
    app: Injectable,
    request: { method: 'GET' | 'POST' | 'DELETE'; url: string; payload?: unknown; headers?: Record<string, string> },
    status: number,
  ): Promise<Exchange> {
    const res = await app.inject({
      method: request.method,
      url: request.url,
      ...(request.payload === undefined ? {} : { payload: request.payload as string }),
      ...(request.headers ? { headers: request.headers } : {}),
    });
    // The documented path: the cooldown key and the pause id are its parameters.
    const path = (request.url.split('?')[0] ?? '')
      .replace(/^\/v1\/cooldowns\/.*$/, '/v1/cooldowns/{key}')
      .replace(/^\/v1\/pauses\/.*$/, '/v1/pauses/{id}');
    assert.equal(res.statusCode, status, `${request.method} ${request.url}: ${res.body.slice(0, 500)}`);
    const json = /json/.test(String(res.headers['content-type']));
    const body: unknown = json ? res.json() : res.body;
    check(path, request.method.toLowerCase(), res.statusCode, body);
    const answered = { method: request.method, url: path, status: res.statusCode, body };
    seen.push(answered);
    // The audit trail also holds remediation and escalation entries, which have no outcome.
    for (const decision of (body as { decisions?: { outcome?: string }[] }).decisions ?? []) {
      if (decision.outcome !== undefined) outcomes.add(decision.outcome);
    }
    return answered;
  }

  const outcomeOf = (answered: Exchange) =>
    (answered.body as { decisions: { outcome: string }[] }).decisions[0]?.outcome;
  const crashloop = (pod: string, namespace = 'shop') =>
    firing({ alertname: 'PodCrash', namespace, pod }, { description: 'CrashLoopBackOff' });
  const INGEST = ['/webhook/alertmanager', '/api/v2/alerts', '/v1/explain'] as const;
  const PAUSE = { namespace: 'shop', duration: '2h', reason: 'deploy', createdBy: 'alice' };
  const bodyFor = (url: string, alerts: ReturnType<typeof firing>[]) =>
    url === '/api/v2/alerts' ? alerts.map(({ status: _, ...alert }) => alert) : webhook(alerts);

  it('conforms for every outcome of a dry-run receiver, and for 400, 413 and 415', async () => {
    const { app } = await open();
    const post = (url: string, payload: unknown, status = 200) =>
      exchange(app, { method: 'POST', url, payload }, status);
    assert.equal(outcomeOf(await post('/webhook/alertmanager', webhook([crashloop('api-0')]))), 'dry_run');
    const again = await post('/webhook/alertmanager', webhook([crashloop('api-0')]));
    assert.equal(outcomeOf(again), 'cooldown');
    assert.equal(outcomeOf(await post('/api/v2/alerts', [{ labels: { alertname: 'Watchdog' } }])), 'no_match');
    const noMatch = (await post('/v1/explain', { labels: { alertname: 'Watchdog' } })).body as Schema;
    assert.deepEqual(
      [(noMatch.decisions as Schema[])[0]?.rule, (noMatch.decisions as Schema[])[0]?.priority],
      [null, null],
    );
    const resolved = { ...crashloop('api-1', 'cart'), status: 'resolved' };
    assert.equal(outcomeOf(await post('/webhook/alertmanager', webhook([resolved]))), 'resolved');
    assert.equal(
      outcomeOf(await post('/webhook/alertmanager', webhook([crashloop('dns', 'kube-system')]))),
      'excluded',
    );
    assert.equal(
      outcomeOf(await post('/api/v2/alerts', bodyFor('/api/v2/alerts', [crashloop('x;y', 'web')]))),
      'invalid_target',
    );
    for (const payload of [
      webhook([crashloop('api-9', 'mail')]),
      [crashloop('api-9', 'mail')],
      crashloop('api-9', 'mail'),
    ]) {
      const explained = (await post('/v1/explain', payload)).body as { decisions: Schema[] };
      assert.equal(explained.decisions[0]?.outcome, 'dry_run');
      assert.ok(isObject(explained.decisions[0]?.manifest), 'explain carries the manifest');
    }
    for (const url of INGEST) {
      const bad = await post(url, url === '/webhook/alertmanager' ? { alerts: [{ labels: {} }] } : [{}], 400);
      assert.equal((bad.body as Schema).error, 'invalid_request');
      const huge = bodyFor(url, [crashloop('x'.repeat(1024 * 1024))]);
      await post(url, huge, 413);
      const form = await exchange(
        app,
        { method: 'POST', url, payload: '{}', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
        415,
      );
      assert.match((form.body as Schema).message as string, /send Content-Type: application\/json/);
    }
    const decisions = await exchange(app, { method: 'GET', url: '/v1/decisions' }, 200);
    assert.ok((decisions.body as { decisions: unknown[] }).decisions.length > 0);
    await exchange(app, { method: 'GET', url: '/v1/decisions?limit=0' }, 400);
    await exchange(app, { method: 'GET', url: '/v1/rules' }, 200);
    const status = await exchange(app, { method: 'GET', url: '/v1/status' }, 200);
    assert.deepEqual(status.body, { replica: 'test', mode: 'dry-run', store: 'memory' });
    const activity = await exchange(app, { method: 'GET', url: '/v1/activity' }, 200);
    assert.ok((activity.body as { buckets: { outcomes: Schema }[] }).buckets.some((b) => b.outcomes.dry_run));
    await exchange(app, { method: 'GET', url: '/v1/activity?hours=25' }, 400);
    await exchange(app, { method: 'GET', url: '/healthz' }, 200);
    await exchange(app, { method: 'GET', url: '/readyz' }, 200);
    await exchange(app, { method: 'GET', url: '/metrics' }, 200);
    await exchange(app, { method: 'GET', url: '/openapi.yaml' }, 200);
  });

  it('conforms for rules with an approval gate, an attempt budget and a runbook', async () => {
    const rules = await rulesFrom(`
rules:
  - name: gated
    match: {pattern: "database"}
    priority: P1
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-and-recover}
      max_attempts: 0
      attempt_window: 30m
      approval: required
      approval_timeout: 15m
      runbook_url: https://runbooks.example.com/database
`);
    const { app, clock, store } = await open({ rules });
    const gatedAlert = firing({ alertname: 'DbDown', namespace: 'shop', pod: 'db-0' }, { description: 'database' });
    const gatedAnswer = await exchange(
      app,
      { method: 'POST', url: '/webhook/alertmanager', payload: webhook([gatedAlert]) },
      200,
    );
    assert.equal(outcomeOf(gatedAnswer), 'awaiting_approval');
    const budgeted = await open({
      rules: await rulesFrom(`
rules:
  - name: budgeted
    match: {pattern: "database"}
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-and-recover}
      cooldown: 1s
      max_attempts: 1
`),
    });
    const budgetedPost = () =>
      exchange(budgeted.app, { method: 'POST', url: '/webhook/alertmanager', payload: webhook([gatedAlert]) }, 200);
    assert.equal(outcomeOf(await budgetedPost()), 'dry_run');
    budgeted.clock.now += 2000;
    assert.equal(outcomeOf(await budgetedPost()), 'escalated');
    // What the watcher and the escalations write to the store, as the trail and the listing show them.
    const at = new Date(clock.now).toISOString();
    const remediation = {
      workflow: 'argo/kube-sentinel-gated-0123456789',
      rule: 'gated',
      cooldownKey: 'gated:shop/db',
      target: 'shop/db-0',
      state: 'failed' as const,
      submittedAt: at,
      finishedAt: at,
      message: 'child failed',
      attempt: 1,
    };
    await store.recordTransition(
      remediation,
      {
        kind: 'remediation',
        workflow: remediation.workflow,
        rule: 'gated',
        cooldownKey: remediation.cooldownKey,
        target: remediation.target,
        state: 'failed',
        message: remediation.message,
        durationSeconds: 12,
        at,
        replica: 'test',
      },
      { retentionMs: 3600_000, auditMaxLen: 100 },
    );
    await store.appendDecision(
      {
        kind: 'escalation',
        alertname: 'KubeSentinelRemediationFailed',
        status: 'firing',
        cooldownKey: 'gated:shop/db',
        workflow: remediation.workflow,
        labels: { alertname: 'KubeSentinelRemediationFailed', rule: 'gated' },
        at,
        replica: 'test',
      },
      100,
    );
    const trail = await exchange(app, { method: 'GET', url: '/v1/decisions' }, 200);
    const kinds = (trail.body as { decisions: { kind?: string }[] }).decisions.map((entry) => entry.kind ?? 'decision');
    assert.deepEqual(kinds, ['escalation', 'remediation', 'decision']);
    const listing = await exchange(app, { method: 'GET', url: '/v1/remediations?state=failed&limit=5' }, 200);
    assert.deepEqual((listing.body as { remediations: unknown[] }).remediations, [remediation]);
    await exchange(app, { method: 'GET', url: '/v1/remediations?state=broken' }, 400);
    // With --argo-ui-url each remediation links to its Workflow in the Argo UI.
    const linked = await open({ args: ['--argo-ui-url', 'https://argo.example.com/'], store });
    const links = await exchange(linked.app, { method: 'GET', url: '/v1/remediations?state=failed' }, 200);
    assert.deepEqual((links.body as { remediations: unknown[] }).remediations, [
      { ...remediation, workflowUrl: 'https://argo.example.com/workflows/argo/kube-sentinel-gated-0123456789' },
    ]);
    // The escalation of the failed remediation, as the escalator opens it.
    const failedAlert = {
      labels: { alertname: 'KubeSentinelRemediationFailed' as const, rule: 'gated', workflow: remediation.workflow },
      annotations: { summary: 'remediation failed', workflow_url: 'https://argo.example.com/workflows/argo/x' },
    };
    await store.openEscalation(remediation.cooldownKey, `failed:${remediation.workflow}`, failedAlert, 3600_000);
    const escalations = await exchange(app, { method: 'GET', url: '/v1/escalations?limit=10' }, 200);
    assert.deepEqual((escalations.body as { escalations: unknown[] }).escalations, [
      {
        id: `failed:${remediation.workflow}`,
        cooldownKey: remediation.cooldownKey,
        alertname: 'KubeSentinelRemediationFailed',
        ...failedAlert,
        openedAt: at,
        expiresAt: new Date(clock.now + 3600_000).toISOString(),
      },
    ]);
    await exchange(app, { method: 'GET', url: '/v1/escalations?limit=0' }, 400);
    // The cooldown the gated alert took, listed, then ended by hand (its key sent encoded, then raw).
    const cooldowns = await exchange(app, { method: 'GET', url: '/v1/cooldowns?limit=10' }, 200);
    const [held] = (cooldowns.body as { cooldowns: { key: string; state: string }[] }).cooldowns;
    assert.equal(held?.key, 'gated:shop/db');
    const ended = await exchange(
      app,
      { method: 'DELETE', url: `/v1/cooldowns/${encodeURIComponent('gated:shop/db')}` },
      200,
    );
    assert.equal((ended.body as { ended: { state: string } | null }).ended?.state, 'committed');
    const again = await exchange(app, { method: 'DELETE', url: '/v1/cooldowns/gated:shop/db' }, 200);
    assert.deepEqual(again.body, { key: 'gated:shop/db', ended: null });
    await exchange(app, { method: 'DELETE', url: '/v1/cooldowns/' }, 400);
    await exchange(app, { method: 'GET', url: '/v1/cooldowns?limit=0' }, 400);
    const listed = await exchange(app, { method: 'GET', url: '/v1/rules' }, 200);
    const [gated] = (listed.body as { rules: Record<string, unknown>[] }).rules;
    assert.deepEqual(
      {
        max_attempts: gated?.max_attempts,
        attempt_window: gated?.attempt_window,
        approval: gated?.approval,
        approval_timeout: gated?.approval_timeout,
        runbook_url: gated?.runbook_url,
      },
      {
        max_attempts: 0,
        attempt_window: '30m',
        approval: 'required',
        approval_timeout: '15m',
        runbook_url: 'https://runbooks.example.com/database',
      },
    );
  });

  it('conforms for submitted, failed, retry (503) and rate_limited', async () => {
    const submitter = scriptedSubmitter();
    const { app } = await open({ submitter, args: ['--max-workflows-per-minute=0'] });
    const post = (pod: string, status = 200, to = app) =>
      exchange(to, { method: 'POST', url: '/webhook/alertmanager', payload: webhook([crashloop(pod, pod)]) }, status);
    assert.equal(outcomeOf(await post('a')), 'submitted');
    submitter.next = {
      kind: 'failed',
      status: 403,
      retryable: false,
      reason: '403 Forbidden workflows is forbidden',
      mayHaveLanded: false,
    };
    assert.equal(outcomeOf(await post('b')), 'failed');
    submitter.next = {
      kind: 'failed',
      status: 503,
      retryable: true,
      mayHaveLanded: false,
      reason: '503 ServiceUnavailable',
      retryAfterSeconds: 7,
    };
    assert.equal(outcomeOf(await post('c', 503)), 'retry');
    const limited = (await open({ submitter: scriptedSubmitter(), args: ['--max-workflows-per-minute=1'] })).app;
    assert.equal(outcomeOf(await post('d', 200, limited)), 'submitted');
    assert.equal(outcomeOf(await post('e', 200, limited)), 'rate_limited');
  });

  it('conforms for 401 on every route that needs credentials', async () => {
    const { app } = await open({ config: { authToken: 's3cret' } });
    for (const url of INGEST) await exchange(app, { method: 'POST', url, payload: webhook([]) }, 401);
    for (const url of [
      '/v1/rules',
      '/v1/status',
      '/v1/decisions',
      '/v1/remediations',
      '/v1/escalations',
      '/v1/activity',
      '/v1/cooldowns',
      '/v1/pauses',
    ])
      await exchange(app, { method: 'GET', url }, 401);
    await exchange(app, { method: 'DELETE', url: '/v1/cooldowns/a%3Ab%2Fc' }, 401);
    await exchange(app, { method: 'POST', url: '/v1/pauses', payload: PAUSE }, 401);
    await exchange(app, { method: 'DELETE', url: '/v1/pauses/p-1' }, 401);
  });

  it('conforms when the cooldown store is down: retry on every ingest route, 503 from /readyz and /v1/decisions', async () => {
    const store = new RedisCooldownStore({ url: `redis://127.0.0.1:${await freePort()}`, commandTimeoutMs: 200 });
    opened.push(store);
    const { app } = await open({ store });
    for (const url of INGEST) {
      assert.equal(
        outcomeOf(await exchange(app, { method: 'POST', url, payload: bodyFor(url, [crashloop('api-0')]) }, 503)),
        'retry',
      );
    }
    const ready = await exchange(app, { method: 'GET', url: '/readyz' }, 503);
    assert.match(((ready.body as Schema).reasons as string[]).join(), /cooldown store/);
    await exchange(app, { method: 'GET', url: '/v1/decisions' }, 503);
    await exchange(app, { method: 'GET', url: '/v1/remediations' }, 503);
    await exchange(app, { method: 'GET', url: '/v1/escalations' }, 503);
    await exchange(app, { method: 'GET', url: '/v1/activity' }, 503);
    await exchange(app, { method: 'GET', url: '/v1/cooldowns' }, 503);
    await exchange(app, { method: 'DELETE', url: '/v1/cooldowns/crashloop:shop/api' }, 503);
    await exchange(app, { method: 'GET', url: '/v1/pauses' }, 503);
    await exchange(app, { method: 'POST', url: '/v1/pauses', payload: PAUSE }, 503);
    await exchange(app, { method: 'DELETE', url: '/v1/pauses/p-1' }, 503);
  });

  it('conforms for pauses: added, in force (paused), listed, removed; 400 and 404', async () => {
    const { app } = await open();
    const added = await exchange(app, { method: 'POST', url: '/v1/pauses', payload: PAUSE }, 201);
    const id = (added.body as { id: string }).id;
    const paused = await exchange(
      app,
      { method: 'POST', url: '/webhook/alertmanager', payload: webhook([crashloop('api-0')]) },
      200,
    );
    assert.equal(outcomeOf(paused), 'paused');
    const listed = await exchange(app, { method: 'GET', url: '/v1/pauses' }, 200);
    assert.deepEqual(listed.body, { pauses: [added.body] });
    await exchange(app, { method: 'POST', url: '/v1/pauses', payload: { ...PAUSE, namespace: 'Shop' } }, 400);
    await exchange(app, { method: 'DELETE', url: '/v1/pauses/' }, 400);
    assert.deepEqual((await exchange(app, { method: 'DELETE', url: `/v1/pauses/${id}` }, 200)).body, added.body);
    await exchange(app, { method: 'DELETE', url: `/v1/pauses/${id}` }, 404);
  });

  it('conforms for a pause past the limit: 409', async () => {
    const { app, store } = await open();
    const { expiresAt, createdAt } = (await exchange(app, { method: 'POST', url: '/v1/pauses', payload: PAUSE }, 201))
      .body as { expiresAt: string; createdAt: string };
    for (let i = 1; i < MAX_PAUSES; i++) {
      await store.addPause({ id: `p-${i}`, namespace: 'shop', reason: 'r', createdBy: 'a', createdAt, expiresAt });
    }
    await exchange(app, { method: 'POST', url: '/v1/pauses', payload: PAUSE }, 409);
  });

  it('conforms for the page: 200 with credentials, 401 without, 503 when it was not built', async () => {
    const pagePath = join(mkdtempSync(join(tmpdir(), 'ks-page-')), 'page.html');
    await buildPage(pagePath);
    const { app } = await open({ config: { authToken: 't0ken' }, pagePath });
    await exchange(app, { method: 'GET', url: '/', headers: { authorization: 'Bearer t0ken' } }, 200);
    await exchange(app, { method: 'GET', url: '/' }, 401);
    const { app: unbuilt } = await open({ pagePath: join(tmpdir(), 'ks-no-such-page', 'page.html') });
    await exchange(unbuilt, { method: 'GET', url: '/' }, 503);
  });

  it('has answered every outcome, and every status every route documents', () => {
    assert.deepEqual([...outcomes].sort(), [...ALL_OUTCOMES].sort());
    const documented = Object.entries(document.paths as Schema).flatMap(([url, methods]) =>
      Object.entries(methods as Schema).flatMap(([method, operation]) =>
        Object.keys((operation as Schema).responses as Schema).map(
          (status) => `${method.toUpperCase()} ${url} ${status}`,
        ),
      ),
    );
    const answered = new Set(seen.map((e) => `${e.method} ${e.url} ${e.status}`));
    assert.deepEqual(
      documented.filter((entry) => !answered.has(entry)),
      [],
    );
  });
});
