/**
 * openapi.yaml against the code: every route the app serves is documented, every documented route
 * is served, and each request body, query parameter and response is the route's own TypeBox
 * schema, read the way OpenAPI 3.0 writes it. Descriptions and examples are the document's own.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { RouteOptions } from 'fastify';
import { parse } from 'yaml';
import { OPENAPI_PATH } from '../src/app.js';
import { testApp } from './support/app.js';

type Schema = Record<string, unknown>;

function isObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const document = parse(readFileSync(OPENAPI_PATH, 'utf8')) as Schema;

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
  schema: { body?: unknown; querystring?: unknown; response?: Record<string, unknown> };
}

async function servedRoutes(): Promise<ServedRoute[]> {
  const { app } = await testApp();
  const routes: ServedRoute[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      routes.push({
        method: method.toLowerCase(),
        url: route.url,
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
      const parameters = ((documented.parameters as Schema[] | undefined) ?? []).map((p) => resolve(p) as Schema);
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
