import { KindGuard, type Static, type TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyServerOptions,
  FastifyTypeProvider,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';

/** Routes see their body, query and params as the types of their TypeBox schemas: no casts. */
export interface TypeBoxProvider extends FastifyTypeProvider {
  validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
  serializer: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
}

/** The fastify instance routes are registered on. */
export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxProvider
>;

/**
 * Route schemas are TypeBox schemas, so TypeBox's own compiler validates them. fastify's default
 * pair (Ajv for bodies, fast-json-stringify for responses) compiles the routes' schemas at every
 * start, a large part of the cold start scale-from-zero waits for (bench/README.md); the TypeBox
 * compiler does the same in a fraction of the time, and is as fast per request.
 */

/** One validation problem, in the shape of Ajv's errors that fastify and the error handler read. */
export interface SchemaProblem {
  instancePath: string;
  message: string;
}

interface Branch {
  schema: TSchema;
  check: TypeCheck<TSchema>;
}

/** The JSON type a schema accepts at its top ('array', 'object', …), or undefined. */
function topType(schema: TSchema): string | undefined {
  return typeof schema.type === 'string' ? schema.type : undefined;
}

/** The branch an object was meant for: the one whose required properties it has (a webhook message has `alerts`, one alert `labels`). */
function hasRequired(schema: TSchema, value: unknown): boolean {
  const required: unknown = schema.required;
  return (
    Array.isArray(required) &&
    typeof value === 'object' &&
    value !== null &&
    required.every((key) => typeof key === 'string' && Object.hasOwn(value, key))
  );
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** The allowed values of a union of literals (e.g. an alert's status), for the message. */
function literals(error: ValueError): string[] | undefined {
  if (error.type !== ValueErrorType.Union || !KindGuard.IsUnion(error.schema)) return undefined;
  const values: unknown[] = [];
  for (const option of error.schema.anyOf) {
    if (!KindGuard.IsLiteral(option)) return undefined;
    values.push(option.const);
  }
  return values.map((v) => JSON.stringify(v));
}

function describe(error: ValueError): string {
  const allowed = literals(error);
  if (allowed) return `must be one of ${allowed.join(', ')}`;
  if (error.type === ValueErrorType.ObjectRequiredProperty) return 'is required';
  // TypeBox says "Expected string", "Expected array", …: lower-cased to follow the field name.
  return error.message.charAt(0).toLowerCase() + error.message.slice(1);
}

function firstProblem(check: TypeCheck<TSchema>, value: unknown): SchemaProblem {
  const error = check.Errors(value).First();
  if (!error) return { instancePath: '', message: 'is invalid' };
  return { instancePath: error.path, message: describe(error) };
}

/**
 * A validator for fastify's validatorCompiler. A top-level union (POST /v1/explain takes either
 * payload shape, or one alert) reports the problem of the branch whose JSON type the value has
 * (of two objects, the one whose required properties it has), or the JSON types it takes; never a
 * bare "expected union value". A query string arrives as text: `convert` turns `?limit=5` into the
 * number its schema asks for, and fills in defaults. Bodies are never converted: a number where a
 * string belongs is a 400.
 */
export function compileValidator(
  schema: TSchema,
  convert = false,
): (value: unknown) => { value: unknown } | { error: SchemaProblem[] } {
  const check = TypeCompiler.Compile(schema);
  const branches: Branch[] = KindGuard.IsUnion(schema)
    ? schema.anyOf.map((branch) => ({ schema: branch, check: TypeCompiler.Compile(branch) }))
    : [];
  return (given) => {
    const value = convert ? Value.Default(schema, Value.Convert(schema, given)) : given;
    if (check.Check(value)) return { value };
    const fitting = branches.filter((b) => topType(b.schema) === jsonType(value));
    const branch = fitting.find((b) => hasRequired(b.schema, value)) ?? fitting[0];
    if (branch) return { error: [firstProblem(branch.check, value)] };
    const types = [...new Set(branches.map((b) => topType(b.schema)))];
    if (branches.length > 0 && types.every((t) => t !== undefined)) {
      return { error: [{ instancePath: '', message: `expected ${types.join(' or ')}` }] };
    }
    return { error: [firstProblem(check, value)] };
  };
}

/**
 * fastify's schemaController option: TypeBox validates; responses are written with
 * JSON.stringify (a handler answers exactly what its response schema documents).
 */
export const typeboxCompilers = {
  compilersFactory: {
    buildValidator:
      () =>
      ({ schema, httpPart }: { schema: unknown; httpPart?: string }) =>
        compileValidator(schema as TSchema, httpPart === 'querystring'),
    buildSerializer: () => () => (data: unknown) => JSON.stringify(data),
  },
  // fastify types these factories as Ajv's and fast-json-stringify's; it calls them as above.
} as unknown as NonNullable<FastifyServerOptions['schemaController']>;
