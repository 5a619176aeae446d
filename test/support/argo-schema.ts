/**
 * Validates Argo objects the way the Kubernetes API server does with fieldValidation=Strict:
 * the upstream CRD schema (unknown fields rejected), plus the metadata checks the API server
 * makes itself because the CRD leaves `metadata` open. The CRD's CEL rules are not checked.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formats from 'ajv-formats';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Upstream data lives outside the repository; an environment variable may point elsewhere. */
export const SHARED_DIR = process.env.KUBE_SENTINEL_SHARED ?? resolve(REPO_ROOT, '../shared');

const UPSTREAM_RELEASE = 'argoproj/argo-workflows at f016ad89eb269d282aec06dc491c29f396a38df4';

/** Absolute path of a file under the shared directory; throws naming the upstream file when absent. */
export function sharedPath(relative: string, upstream: string): string {
  const path = resolve(SHARED_DIR, relative);
  if (!existsSync(path)) {
    throw new Error(
      `missing upstream file ${path}: fetch ${upstream} and put it there ` +
        `(or point KUBE_SENTINEL_SHARED at a directory that has it)`,
    );
  }
  return path;
}

export const ARGO_KINDS = ['Workflow', 'WorkflowTemplate', 'ClusterWorkflowTemplate'] as const;
export type ArgoKind = (typeof ARGO_KINDS)[number];

const PLURAL: Record<ArgoKind, string> = {
  Workflow: 'workflows',
  WorkflowTemplate: 'workflowtemplates',
  ClusterWorkflowTemplate: 'clusterworkflowtemplates',
};

function isArgoKind(kind: unknown): kind is ArgoKind {
  return typeof kind === 'string' && (ARGO_KINDS as readonly string[]).includes(kind);
}

type JsonSchema = { [keyword: string]: unknown };

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The API server's strict decoding rejects fields the schema does not declare; JSON Schema
 * allows them unless told otherwise. Objects marked preserve-unknown-fields stay open, as they
 * do in the API server.
 */
export function closeObjectSchemas(schema: unknown): void {
  if (Array.isArray(schema)) {
    for (const item of schema) closeObjectSchemas(item);
    return;
  }
  if (!isSchema(schema)) return;
  const properties = schema.properties;
  if (isSchema(properties)) {
    if (schema['x-kubernetes-preserve-unknown-fields'] !== true && schema.additionalProperties === undefined) {
      schema.additionalProperties = false;
    }
    for (const property of Object.values(properties)) closeObjectSchemas(property);
  }
  closeObjectSchemas(schema.items);
  if (isSchema(schema.additionalProperties)) closeObjectSchemas(schema.additionalProperties);
  for (const keyword of ['allOf', 'anyOf', 'oneOf', 'not']) closeObjectSchemas(schema[keyword]);
}

const validators = new Map<ArgoKind, ValidateFunction>();
let ajv: Ajv | undefined;
const sharedSchemaIds = new Set<string>();
/** Subschemas at least this long (as JSON) are compiled once and referenced; smaller ones stay inline. */
const SHARED_SCHEMA_MIN_LENGTH = 500;

/**
 * The three CRDs repeat large subschemas (containers, artifacts, volumes, and the whole spec
 * across kinds). Ajv compiles every inline copy again; giving each a content-addressed $id
 * compiles it once per process. This turns about 4 s per kind into about 1.5 s for the first
 * kind and a few ms for the others, without changing what is accepted.
 */
function shareSubschema(validator: Ajv, schema: JsonSchema): JsonSchema {
  const json = JSON.stringify(schema);
  if (json.length < SHARED_SCHEMA_MIN_LENGTH) return shareSubschemasInside(validator, schema);
  const id = `https://kube-sentinel.invalid/argo-crd/${createHash('sha256').update(json).digest('hex')}`;
  if (!sharedSchemaIds.has(id)) {
    sharedSchemaIds.add(id);
    validator.addSchema({ ...shareSubschemasInside(validator, structuredClone(schema)), $id: id });
  }
  return { $ref: id };
}

function shareSubschemasInside(validator: Ajv, schema: JsonSchema): JsonSchema {
  const { properties, items, additionalProperties } = schema;
  if (isSchema(properties)) {
    for (const [name, property] of Object.entries(properties)) {
      if (isSchema(property)) properties[name] = shareSubschema(validator, property);
    }
  }
  if (isSchema(items)) schema.items = shareSubschema(validator, items);
  if (isSchema(additionalProperties)) schema.additionalProperties = shareSubschema(validator, additionalProperties);
  for (const keyword of ['allOf', 'anyOf', 'oneOf']) {
    const branches = schema[keyword];
    if (Array.isArray(branches)) {
      schema[keyword] = branches.map((branch: unknown) =>
        isSchema(branch) ? shareSubschema(validator, branch) : branch,
      );
    }
  }
  return schema;
}

/** Each kind is compiled once per process, on first use. */
function validatorFor(kind: ArgoKind): ValidateFunction {
  const cached = validators.get(kind);
  if (cached) return cached;
  const plural = PLURAL[kind];
  const path = sharedPath(
    `argo/crd/${plural}.json`,
    `manifests/base/crds/full/argoproj.io_${plural}.yaml from ${UPSTREAM_RELEASE} (openAPIV3Schema, descriptions removed)`,
  );
  const crd: unknown = JSON.parse(readFileSync(path, 'utf8'));
  const schema = openApiSchemaOf(crd);
  if (!schema) throw new Error(`${path}: no openAPIV3Schema found`);
  closeObjectSchemas(schema);
  if (!ajv) {
    // Optimizing the generated code doubles the compile time and gains nothing for a test suite;
    // inlining referenced schemas would undo the sharing.
    ajv = new Ajv({ strict: false, allErrors: true, code: { optimize: false }, inlineRefs: false });
    formats.default(ajv);
  }
  const validate = ajv.compile(shareSubschemasInside(ajv, schema));
  validators.set(kind, validate);
  return validate;
}

/** The shared files hold the bare schema; a full CRD manifest keeps it under spec.versions. */
function openApiSchemaOf(crd: unknown): JsonSchema | undefined {
  if (!isSchema(crd)) return undefined;
  if (isSchema(crd.openAPIV3Schema)) return crd.openAPIV3Schema;
  const spec = crd.spec;
  if (!isSchema(spec) || !Array.isArray(spec.versions)) return undefined;
  const version: unknown = spec.versions[0];
  if (!isSchema(version) || !isSchema(version.schema)) return undefined;
  const schema = version.schema.openAPIV3Schema;
  return isSchema(schema) ? schema : undefined;
}

/** One problem, shaped like a Kubernetes `StatusCause`. */
export interface FieldProblem {
  field: string;
  reason:
    | 'FieldValueRequired'
    | 'FieldValueInvalid'
    | 'FieldValueTypeInvalid'
    | 'FieldValueNotSupported'
    | 'FieldValueTooLong';
  message: string;
}

/** `/spec/templates/0/name` -> `spec.templates[0].name`. */
function fieldPath(instancePath: string): string {
  if (instancePath === '') return '';
  let path = '';
  for (const raw of instancePath.slice(1).split('/')) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(segment)) path += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) path += path === '' ? segment : `.${segment}`;
    else path += `[${JSON.stringify(segment)}]`;
  }
  return path;
}

function child(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

/** `must be integer or string` from the failed branches of an anyOf, when they are plain type checks. */
function describeAnyOf(anyOf: ErrorObject, errors: readonly ErrorObject[]): string {
  const branches = errors.filter((error) => isBranchOf(error, anyOf));
  const types = branches.filter((error) => error.keyword === 'type' && error.instancePath === anyOf.instancePath);
  if (types.length === 0 || types.length !== branches.length) return anyOf.message ?? 'invalid';
  return `must be ${types.map((error) => String(error.params.type)).join(' or ')}`;
}

/** Shared subschemas make schema paths repeat across the document, so the instance path must agree too. */
function isBranchOf(error: ErrorObject, anyOf: ErrorObject): boolean {
  return (
    error.schemaPath.startsWith(`${anyOf.schemaPath}/`) &&
    (error.instancePath === anyOf.instancePath || error.instancePath.startsWith(`${anyOf.instancePath}/`))
  );
}

function schemaProblems(errors: readonly ErrorObject[]): FieldProblem[] {
  // An int-or-string field that is neither reports each failed branch too; the anyOf line says it all.
  const anyOfs = errors.filter((error) => error.keyword === 'anyOf');
  const problems: FieldProblem[] = [];
  for (const error of errors) {
    if (anyOfs.some((anyOf) => isBranchOf(error, anyOf))) continue;
    const path = fieldPath(error.instancePath);
    switch (error.keyword) {
      case 'additionalProperties':
        problems.push({
          field: child(path, String(error.params.additionalProperty)),
          reason: 'FieldValueInvalid',
          message: 'unknown field',
        });
        break;
      case 'required':
        problems.push({
          field: child(path, String(error.params.missingProperty)),
          reason: 'FieldValueRequired',
          message: 'Required value',
        });
        break;
      case 'type':
        problems.push({
          field: path,
          reason: 'FieldValueTypeInvalid',
          message: `must be ${String(error.params.type)}`,
        });
        break;
      case 'enum': {
        const allowed = Array.isArray(error.params.allowedValues) ? error.params.allowedValues : [];
        problems.push({
          field: path,
          reason: 'FieldValueNotSupported',
          message: `must be one of: ${allowed.map((value) => JSON.stringify(value)).join(', ')}`,
        });
        break;
      }
      case 'anyOf':
        problems.push({
          field: path,
          reason: 'FieldValueTypeInvalid',
          message: describeAnyOf(error, errors),
        });
        break;
      default:
        problems.push({ field: path, reason: 'FieldValueInvalid', message: error.message ?? error.keyword });
    }
  }
  return problems;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** The API server's SimpleNameGenerator appends this many random characters to generateName. */
export const GENERATED_SUFFIX_LENGTH = 5;
const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** Namespaces, and the names Kube Sentinel gives its own Workflows (≤ 63, no dots). */
export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** What the API server accepts as the name of a Workflow or WorkflowTemplate. */
export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

const SUBDOMAIN_RULE =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const LABEL_RULE =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const QUALIFIED_RULE =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const VALUE_RULE =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

function invalid(field: string, value: string, rule: string): FieldProblem {
  return { field, reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${rule}` };
}

function tooLong(field: string, value: string, max: number): FieldProblem {
  return {
    field,
    reason: 'FieldValueTooLong',
    message: `Invalid value: ${JSON.stringify(value)}: must be no more than ${max} characters`,
  };
}

/** Label and annotation keys: an optional DNS-subdomain prefix and '/', then a qualified name. */
function keyProblems(field: string, key: string): FieldProblem[] {
  const parts = key.split('/');
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  const prefix = parts.length === 2 ? parts[0]! : undefined;
  if (parts.length > 2) {
    return [
      invalid(field, key, "a qualified name must consist of an optional DNS subdomain prefix and '/' and a name"),
    ];
  }
  const problems: FieldProblem[] = [];
  if (prefix !== undefined) {
    if (prefix === '') problems.push(invalid(field, key, 'prefix part must be non-empty'));
    else if (prefix.length > 253) problems.push(tooLong(field, key, 253));
    else if (!DNS1123_SUBDOMAIN.test(prefix)) problems.push(invalid(field, key, `prefix part ${SUBDOMAIN_RULE}`));
  }
  if (name === '') problems.push(invalid(field, key, 'name part must be non-empty'));
  else if (name.length > 63) problems.push(tooLong(field, key, 63));
  else if (!QUALIFIED_NAME.test(name)) problems.push(invalid(field, key, QUALIFIED_RULE));
  return problems;
}

function labelFieldProblems(labels: unknown, field: string): FieldProblem[] {
  if (labels === undefined || labels === null) return [];
  if (!isSchema(labels)) return [{ field, reason: 'FieldValueTypeInvalid', message: 'must be object' }];
  const problems: FieldProblem[] = [];
  for (const [key, value] of Object.entries(labels)) {
    problems.push(...keyProblems(field, key));
    if (typeof value !== 'string') {
      problems.push({
        field: `${field}[${JSON.stringify(key)}]`,
        reason: 'FieldValueTypeInvalid',
        message: 'must be string',
      });
    } else if (value.length > 63) {
      problems.push(tooLong(field, value, 63));
    } else if (!LABEL_VALUE.test(value)) {
      problems.push(invalid(field, value, VALUE_RULE));
    }
  }
  return problems;
}

function annotationFieldProblems(annotations: unknown, field: string): FieldProblem[] {
  if (annotations === undefined || annotations === null) return [];
  if (!isSchema(annotations)) return [{ field, reason: 'FieldValueTypeInvalid', message: 'must be object' }];
  const problems: FieldProblem[] = [];
  let bytes = 0;
  for (const [key, value] of Object.entries(annotations)) {
    problems.push(...keyProblems(field, key));
    if (typeof value !== 'string') {
      problems.push({
        field: `${field}[${JSON.stringify(key)}]`,
        reason: 'FieldValueTypeInvalid',
        message: 'must be string',
      });
    } else {
      bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
    }
  }
  if (bytes > MAX_ANNOTATIONS_BYTES) {
    problems.push({
      field,
      reason: 'FieldValueTooLong',
      message: `Too long: must have at most ${MAX_ANNOTATIONS_BYTES} bytes`,
    });
  }
  return problems;
}

function render(problem: FieldProblem): string {
  return `${problem.field === '' ? '<root>' : problem.field}: ${problem.message}`;
}

/** Label problems as messages, e.g. `metadata.labels: Invalid value: "x…": must be no more than 63 characters`. */
export function labelProblems(labels: unknown, field = 'metadata.labels'): string[] {
  return labelFieldProblems(labels, field).map(render);
}

/** The checks the API server makes on `metadata` of any object, since the CRD schema leaves it open. */
function metadataProblems(metadata: unknown, kind: ArgoKind): FieldProblem[] {
  if (!isSchema(metadata)) return [];
  const problems: FieldProblem[] = [];
  const { name, generateName, namespace } = metadata;
  if (name !== undefined && typeof name !== 'string') {
    problems.push({ field: 'metadata.name', reason: 'FieldValueTypeInvalid', message: 'must be string' });
  }
  if (generateName !== undefined && typeof generateName !== 'string') {
    problems.push({ field: 'metadata.generateName', reason: 'FieldValueTypeInvalid', message: 'must be string' });
  }
  if (!name && !generateName) {
    problems.push({
      field: 'metadata.name',
      reason: 'FieldValueRequired',
      message: 'Required value: name or generateName is required',
    });
  }
  if (typeof name === 'string' && name !== '' && !isDns1123Subdomain(name)) {
    problems.push(
      name.length > 253 ? tooLong('metadata.name', name, 253) : invalid('metadata.name', name, SUBDOMAIN_RULE),
    );
  }
  if (typeof generateName === 'string' && generateName !== '') {
    // Like the API server: a trailing '-' is expected in a prefix, so it is masked before the check.
    const masked = generateName.endsWith('-') ? `${generateName.slice(0, -1)}a` : generateName;
    if (!DNS1123_SUBDOMAIN.test(masked)) {
      problems.push(invalid('metadata.generateName', generateName, SUBDOMAIN_RULE));
    } else if (generateName.length + GENERATED_SUFFIX_LENGTH > 63) {
      problems.push(tooLong('metadata.generateName', generateName, 63 - GENERATED_SUFFIX_LENGTH));
    }
  }
  if (namespace !== undefined && kind !== 'ClusterWorkflowTemplate') {
    if (typeof namespace !== 'string') {
      problems.push({ field: 'metadata.namespace', reason: 'FieldValueTypeInvalid', message: 'must be string' });
    } else if (namespace !== '' && !isDns1123Label(namespace)) {
      problems.push(invalid('metadata.namespace', namespace, LABEL_RULE));
    }
  }
  problems.push(...labelFieldProblems(metadata.labels, 'metadata.labels'));
  problems.push(...annotationFieldProblems(metadata.annotations, 'metadata.annotations'));
  return problems;
}

const API_VERSION = 'argoproj.io/v1alpha1';

/** Every problem with an Argo object, as StatusCause-like records; empty when the API server would accept it. */
export function argoObjectProblems(obj: unknown): FieldProblem[] {
  if (!isSchema(obj)) return [{ field: '', reason: 'FieldValueTypeInvalid', message: 'must be object' }];
  const { kind } = obj;
  if (!isArgoKind(kind)) {
    return [
      {
        field: 'kind',
        reason: 'FieldValueNotSupported',
        message: `Unsupported value: ${JSON.stringify(kind ?? null)}: must be one of: ${ARGO_KINDS.join(', ')}`,
      },
    ];
  }
  const problems: FieldProblem[] = [];
  if (obj.apiVersion !== API_VERSION) {
    problems.push({
      field: 'apiVersion',
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${JSON.stringify(obj.apiVersion ?? null)}: must be ${API_VERSION}`,
    });
  }
  const validate = validatorFor(kind);
  if (!validate(obj)) problems.push(...schemaProblems(validate.errors ?? []));
  problems.push(...metadataProblems(obj.metadata, kind));
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const line = render(problem);
    if (seen.has(line)) return false;
    seen.add(line);
    return true;
  });
}

/**
 * Problems as human messages, e.g. `spec.entryPoint: unknown field` or
 * `spec.arguments.parameters[0].value: must be string`; empty when valid.
 */
export function validateArgoObject(obj: unknown): string[] {
  return argoObjectProblems(obj).map(render);
}
