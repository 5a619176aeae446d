/** `remediation.params` of a rules file: the Workflow a rule submits, and the arguments it passes. */
import { isMap, isScalar, isSeq } from 'yaml';
import { dnsLabelProblem, dnsSubdomainProblem, envName, imageProblem, PARAMETER_NAME } from '../kube/names.js';
import { BUILT_IN_PARAMETERS, INLINE_ENV } from '../kube/workflow.js';
import { referenceProblem } from './references.js';
import { INLINE_ACTIONS, type InlineAction, type TriggerParams, type WorkflowArgument } from './types.js';
import type { Field, FileValidator } from './yaml.js';

const PARAMS_FIELDS = [
  'workflow_template',
  'cluster_scope',
  'workflow_name',
  'namespace',
  'service_account',
  'arguments',
  'image',
  'script',
  'inline_action',
] as const;
const ARGUMENT_FIELDS = ['name', 'value'] as const;
// Only inline workflows have a container of ours; with a template these would be silently ignored.
const INLINE_ONLY_PARAMS = ['image', 'script', 'inline_action'] as const;

const BUILT_IN_LIST = `${BUILT_IN_PARAMETERS.slice(0, -1).join(', ')} and ${BUILT_IN_PARAMETERS.at(-1)}`;

function isBuiltIn(name: string): boolean {
  return (BUILT_IN_PARAMETERS as readonly string[]).includes(name);
}

/**
 * One argument, from YAML or from the JSON string form. `lineOf` says where to point for a key
 * (for the JSON form, always the line of the string).
 */
function checkArgument(
  record: Readonly<Record<string, unknown>>,
  path: string,
  lineOf: (key: 'name' | 'value' | null) => number,
  report: (line: number, message: string) => void,
): WorkflowArgument | null {
  let ok = true;
  const name = record.name;
  if (typeof name !== 'string') {
    report(
      lineOf(name === undefined ? null : 'name'),
      `${path}.name ${name === undefined || name === null ? 'is required' : 'must be a string'}`,
    );
    ok = false;
  } else if (!PARAMETER_NAME.test(name)) {
    report(lineOf('name'), `${path}.name ${JSON.stringify(name)} must be letters, digits, '_' and '-'`);
    ok = false;
  } else if (isBuiltIn(name)) {
    report(
      lineOf('name'),
      `${path}.name ${JSON.stringify(name)} is reserved: every Workflow already gets ${BUILT_IN_LIST}`,
    );
    ok = false;
  }
  const raw = record.value;
  let value: string | null = null;
  // The API server refuses non-string parameter values, so numbers and booleans become their text.
  if (typeof raw === 'string') value = raw;
  else if (typeof raw === 'number' || typeof raw === 'boolean') value = String(raw);
  else {
    report(
      lineOf(raw === undefined ? null : 'value'),
      `${path}.value ${raw === undefined || raw === null ? 'is required' : 'must be a string, number or boolean'}`,
    );
    ok = false;
  }
  if (value !== null) {
    const problem = referenceProblem(value);
    if (problem !== null) {
      report(lineOf('value'), `${path}.value ${problem}`);
      ok = false;
    }
  }
  return ok && typeof name === 'string' && value !== null ? { name, value } : null;
}

/**
 * `arguments`, as a YAML list or a JSON array string. For an inline workflow every argument also
 * becomes an environment variable of its script: no two may become the same one, nor one the
 * container already has (a built-in parameter's, or HOME).
 */
function parseArguments(v: FileValidator, field: Field, path: string, inline: boolean): WorkflowArgument[] | null {
  const report = (line: number, message: string): void => v.report(line, message);
  const checked: { argument: WorkflowArgument | null; line: number }[] = [];
  if (isScalar(field.value) && typeof field.value.value === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(field.value.value);
    } catch (err) {
      v.report(field.line, `${path} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
    if (!Array.isArray(parsed)) {
      v.report(field.line, `${path} must be a JSON array of {"name", "value"} objects`);
      return null;
    }
    const line = field.line;
    parsed.forEach((entry: unknown, index) => {
      const entryPath = `${path}[${index}]`;
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
        v.report(line, `${entryPath} must be an object with name and value`);
        checked.push({ argument: null, line });
        return;
      }
      const record = entry as Record<string, unknown>;
      const unknown = Object.keys(record).filter((key) => !(ARGUMENT_FIELDS as readonly string[]).includes(key));
      for (const key of unknown) v.report(line, `unknown field ${JSON.stringify(`${entryPath}.${key}`)}`);
      const argument = checkArgument(record, entryPath, () => line, report);
      checked.push({ argument: unknown.length > 0 ? null : argument, line });
    });
  } else if (isSeq(field.value)) {
    field.value.items.forEach((item, index) => {
      const node = v.resolve(item);
      const line = v.lineOf(node, field.line);
      const entryPath = `${path}[${index}]`;
      if (!isMap(node)) {
        v.report(line, `${entryPath} must be a mapping with name and value`);
        checked.push({ argument: null, line });
        return;
      }
      const before = v.problems.length;
      const fields = v.fields(node, entryPath, line, ARGUMENT_FIELDS) ?? new Map<string, Field>();
      const record: Record<string, unknown> = {};
      for (const [key, f] of fields) {
        const scalar = isScalar(f.value) ? f.value : null;
        // A YAML number keeps the text it was written as (`1.50`, not `1.5`).
        if (scalar !== null && typeof scalar.value === 'number') record[key] = scalar.source ?? String(scalar.value);
        else record[key] = scalar !== null ? scalar.value : f.value === null ? null : {};
      }
      const argument = checkArgument(
        record,
        entryPath,
        (key) => (key === null ? line : (fields.get(key)?.line ?? line)),
        report,
      );
      checked.push({ argument: v.problems.length > before ? null : argument, line });
    });
  } else {
    v.report(field.line, `${path} must be a list of {name, value} or a JSON array string`);
    return null;
  }
  const firstLine = new Map<string, number>();
  const envNames = new Map<string, string>();
  if (inline) {
    for (const builtIn of BUILT_IN_PARAMETERS) envNames.set(envName(builtIn), builtIn);
    for (const name of Object.keys(INLINE_ENV)) envNames.set(name, '');
  }
  let ok = true;
  checked.forEach(({ argument, line }, index) => {
    if (argument === null) {
      ok = false;
      return;
    }
    const seen = firstLine.get(argument.name);
    if (seen !== undefined) {
      v.report(line, `${path}[${index}].name ${JSON.stringify(argument.name)} is given twice (first on line ${seen})`);
      ok = false;
    } else firstLine.set(argument.name, line);
    // Inline scripts see every argument as an environment variable; two names must not collide there.
    const env = envName(argument.name);
    const clash = envNames.get(env);
    if (clash === '') {
      v.report(
        line,
        `${path}[${index}].name ${JSON.stringify(argument.name)} becomes the environment variable ${env}, which the inline workflow sets itself`,
      );
      ok = false;
    } else if (clash !== undefined && clash !== argument.name) {
      v.report(
        line,
        `${path}[${index}].name ${JSON.stringify(argument.name)} and ${JSON.stringify(clash)} both become the environment variable ${env}`,
      );
      ok = false;
    } else envNames.set(env, argument.name);
  });
  return ok ? checked.map(({ argument }) => argument as WorkflowArgument) : null;
}

export function parseParams(v: FileValidator, field: Field | undefined, ruleLine: number): TriggerParams | null {
  const path = 'remediation.params';
  if (field === undefined) {
    v.report(ruleLine, `${path} is required`);
    return null;
  }
  const fields = v.fields(field.value, path, field.line, PARAMS_FIELDS);
  if (fields === null) return null;
  const before = v.problems.length;

  const name = (key: (typeof PARAMS_FIELDS)[number], check: (value: string) => string | null): string | undefined => {
    const f = fields.get(key);
    const value = v.string(f, `${path}.${key}`);
    if (value === undefined || f === undefined) return undefined;
    const problem = check(value);
    if (problem !== null) v.report(f.line, `${path}.${key} ${JSON.stringify(value)} ${problem}`);
    return value;
  };

  const workflowTemplate = name('workflow_template', dnsSubdomainProblem);
  const workflowName = name('workflow_name', dnsLabelProblem);
  const templateField = fields.get('workflow_template');
  const nameField = fields.get('workflow_name');
  if (templateField === undefined && nameField === undefined) {
    v.report(
      field.keyLine,
      `${path} needs workflow_template (a WorkflowTemplate) or workflow_name (an inline workflow)`,
    );
  } else if (templateField !== undefined && nameField !== undefined) {
    v.report(nameField.keyLine, `${path} has both workflow_template and workflow_name; give exactly one`);
  }
  const clusterScopeField = fields.get('cluster_scope');
  const clusterScope = v.boolean(clusterScopeField, `${path}.cluster_scope`, false);
  if (clusterScope && clusterScopeField !== undefined && templateField === undefined && nameField !== undefined) {
    v.report(clusterScopeField.line, `${path}.cluster_scope applies only to workflow_template`);
  }
  const namespace = name('namespace', dnsLabelProblem);
  const serviceAccount = name('service_account', dnsSubdomainProblem);
  const image = name('image', imageProblem);
  const scriptField = fields.get('script');
  const script = v.string(scriptField, `${path}.script`);
  if (script !== undefined && scriptField !== undefined && script.includes('{{')) {
    // Argo would substitute into the script text, where a shell parses it: the injection hole.
    v.report(
      scriptField.line,
      `${path}.script must not contain "{{": read parameters from the environment ("$POD", "$NAMESPACE", "$CONTAINER", arguments upper-cased)`,
    );
  }
  let inlineAction: InlineAction | undefined;
  const actionField = fields.get('inline_action');
  const actionText = v.string(actionField, `${path}.inline_action`);
  if (actionText !== undefined && actionField !== undefined) {
    if ((INLINE_ACTIONS as readonly string[]).includes(actionText)) inlineAction = actionText as InlineAction;
    else
      v.report(
        actionField.line,
        `${path}.inline_action ${JSON.stringify(actionText)} is not one of ${INLINE_ACTIONS.join(', ')}`,
      );
  }
  if (templateField !== undefined) {
    for (const key of INLINE_ONLY_PARAMS) {
      const f = fields.get(key);
      if (f !== undefined)
        v.report(
          f.keyLine,
          `${path}.${key} applies only to inline workflows (workflow_name), not with workflow_template`,
        );
    }
  }
  if (script !== undefined && actionField !== undefined) {
    v.report(actionField.keyLine, `${path} has both script and inline_action; give one`);
  }
  const argumentsField = fields.get('arguments');
  const args =
    argumentsField === undefined
      ? []
      : parseArguments(v, argumentsField, `${path}.arguments`, templateField === undefined);

  if (v.problems.length > before || args === null) return null;
  const params: TriggerParams = { clusterScope, arguments: args };
  if (workflowTemplate !== undefined) params.workflowTemplate = workflowTemplate;
  if (workflowName !== undefined) params.workflowName = workflowName;
  if (namespace !== undefined) params.namespace = namespace;
  if (serviceAccount !== undefined) params.serviceAccount = serviceAccount;
  if (image !== undefined) params.image = image;
  if (script !== undefined) params.script = script;
  if (inlineAction !== undefined) params.inlineAction = inlineAction;
  return params;
}
