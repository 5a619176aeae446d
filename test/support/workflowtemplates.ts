/**
 * Checks for Argo WorkflowTemplates that the CRD schema cannot make: references between
 * templates, parameters, where `{{...}}` may appear, container hardening, and the shell
 * scripts themselves. Each check returns problems as messages (empty when fine), so the same
 * checks can run on the chart's files and on what `helm template` renders from them.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export const WORKFLOW_TEMPLATES_DIR = resolve(REPO_ROOT, 'helm/kube-sentinel/files/workflowtemplates');

/** SPEC §8, in the order it lists them. */
export const BUILT_IN_TEMPLATES = [
  'diagnose-pod',
  'restart-with-backup',
  'scale-and-monitor',
  'diagnose-memory',
  'network-diagnostics',
  'check-image-registry',
  'diagnose-and-recover',
] as const;
export type BuiltInTemplate = (typeof BUILT_IN_TEMPLATES)[number];

/** The only images the built-in templates may run. */
export const ALLOWED_IMAGES = [
  'docker.io/alpine/k8s:1.33.1',
  'docker.io/curlimages/curl:8.11.1',
  'docker.io/busybox:1.37.0',
] as const;

// Parsed YAML has no static shape; the checks inspect it structurally and report what is missing.
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML and JSON documents, walked by tests that check their shape.
export type Json = any;

export function workflowTemplateFiles(): string[] {
  return readdirSync(WORKFLOW_TEMPLATES_DIR)
    .filter((file) => /\.ya?ml$/.test(file))
    .sort();
}

/** One file, parsed with aliases resolved as Helm's fromYaml resolves them; throws on YAML errors. */
export function loadWorkflowTemplate(name: string): Json {
  const path = join(WORKFLOW_TEMPLATES_DIR, `${name}.yaml`);
  const document = parseDocument(readFileSync(path, 'utf8'), { prettyErrors: true });
  if (document.errors.length > 0) {
    throw new Error(`${path}: ${document.errors.map((error) => error.message).join('\n')}`);
  }
  return document.toJS({ maxAliasCount: 1000 });
}

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every string in a value, with its path. */
export function stringsIn(value: unknown, path = ''): { path: string; value: string }[] {
  if (typeof value === 'string') return [{ path, value }];
  if (Array.isArray(value)) return value.flatMap((item, index) => stringsIn(item, `${path}[${index}]`));
  if (isObject(value))
    return Object.entries(value).flatMap(([key, item]) => stringsIn(item, path ? `${path}.${key}` : key));
  return [];
}

export interface ContainerSite {
  path: string;
  container: Json;
}

/**
 * Every container-like object anywhere in the value: a template's `container` and `script`,
 * `initContainers[]`, `sidecars[]` and `containerSet.containers[]`. Found by walking the whole
 * object, so a container kind in an unexpected place is not missed.
 */
export function containersIn(value: unknown, path = ''): ContainerSite[] {
  const sites: ContainerSite[] = [];
  const visit = (node: unknown, at: string, parentKey: string): void => {
    if (Array.isArray(node)) {
      for (const [index, item] of node.entries()) visit(item, `${at}[${index}]`, parentKey);
      return;
    }
    if (!isObject(node)) return;
    for (const [key, child] of Object.entries(node)) {
      const childPath = at ? `${at}.${key}` : key;
      if ((key === 'container' || key === 'script') && isObject(child))
        sites.push({ path: childPath, container: child });
      if (
        (key === 'initContainers' || key === 'sidecars' || (key === 'containers' && parentKey === 'containerSet')) &&
        Array.isArray(child)
      ) {
        child.forEach((item, index) => {
          if (isObject(item)) sites.push({ path: `${childPath}[${index}]`, container: item });
        });
      }
      visit(child, childPath, key);
    }
  };
  visit(value, path, '');
  return sites;
}

/** `{{` anywhere in what reaches a shell or an exec: command, args, script source. */
export function shellTemplatingProblems(value: unknown): string[] {
  const problems: string[] = [];
  for (const { path, container } of containersIn(value)) {
    for (const field of ['command', 'args', 'source']) {
      for (const { path: where, value: text } of stringsIn(container[field], `${path}.${field}`)) {
        if (text.includes('{{')) problems.push(`${where}: contains {{ (pass the value through env instead)`);
      }
    }
  }
  return problems;
}

function parameterNames(parameters: unknown): string[] {
  return Array.isArray(parameters) ? parameters.filter(isObject).map((parameter) => String(parameter.name)) : [];
}

const INPUT_REFERENCE = /\{\{\s*inputs\.parameters\.([A-Za-z0-9_-]+)\s*\}\}/g;
const WORKFLOW_PARAMETER_REFERENCE = /\{\{\s*workflow\.parameters\.([A-Za-z0-9_-]+)\s*\}\}/g;

function templatesOf(workflowTemplate: Json): Json[] {
  return Array.isArray(workflowTemplate?.spec?.templates) ? workflowTemplate.spec.templates.filter(isObject) : [];
}

/** Every `{{inputs.parameters.X}}` a template uses is one of its own inputs, and every input is used. */
export function inputParameterProblems(workflowTemplate: Json): string[] {
  const problems: string[] = [];
  for (const template of templatesOf(workflowTemplate)) {
    const declared = parameterNames(template.inputs?.parameters);
    const used = new Set<string>();
    for (const { path, value } of stringsIn(template)) {
      for (const match of value.matchAll(INPUT_REFERENCE)) {
        const name = match[1]!;
        used.add(name);
        if (!declared.includes(name))
          problems.push(`template ${template.name}: ${path} uses inputs.parameters.${name}, which it does not declare`);
      }
    }
    for (const name of declared) {
      if (!used.has(name)) problems.push(`template ${template.name}: declares input ${name} but never uses it`);
    }
  }
  return problems;
}

/** Every `{{workflow.parameters.X}}` is declared in spec.arguments.parameters. */
export function workflowParameterProblems(workflowTemplate: Json): string[] {
  const declared = parameterNames(workflowTemplate?.spec?.arguments?.parameters);
  const problems: string[] = [];
  for (const { path, value } of stringsIn(workflowTemplate?.spec)) {
    for (const match of value.matchAll(WORKFLOW_PARAMETER_REFERENCE)) {
      if (!declared.includes(match[1]!))
        problems.push(`spec.${path} uses workflow.parameters.${match[1]}, which spec.arguments does not declare`);
    }
  }
  return problems;
}

interface Invocation {
  /** The steps or DAG template that makes the call. */
  caller: string;
  name: string;
  template: string | undefined;
  hasTemplateRef: boolean;
  arguments: string[];
  call: Json;
  /** Steps: the index of its parallel group; DAG: 0. */
  group: number;
}

function invocationsOf(template: Json): Invocation[] {
  const invocations: Invocation[] = [];
  const add = (call: Json, group: number) => {
    if (!isObject(call)) return;
    invocations.push({
      caller: String(template.name),
      name: String(call.name),
      template: typeof call.template === 'string' ? call.template : undefined,
      hasTemplateRef: call.templateRef !== undefined,
      arguments: parameterNames(call.arguments?.parameters),
      call,
      group,
    });
  };
  if (Array.isArray(template.steps)) {
    template.steps.forEach((group: Json, index: number) => {
      if (Array.isArray(group)) for (const step of group) add(step, index);
    });
  }
  if (Array.isArray(template.dag?.tasks)) for (const task of template.dag.tasks) add(task, 0);
  return invocations;
}

/**
 * The entrypoint, onExit and every step and DAG task name a template of this WorkflowTemplate
 * (cross-template references are not used by the built-in templates, so they are refused).
 */
export function templateReferenceProblems(workflowTemplate: Json): string[] {
  const templates = templatesOf(workflowTemplate);
  const names = templates.map((template) => String(template.name));
  const problems: string[] = [];
  const duplicates = names.filter((name, index) => names.indexOf(name) !== index);
  for (const name of new Set(duplicates)) problems.push(`template ${name} is defined more than once`);
  const spec = workflowTemplate?.spec ?? {};
  if (typeof spec.entrypoint !== 'string' || !names.includes(spec.entrypoint)) {
    problems.push(
      `spec.entrypoint ${JSON.stringify(spec.entrypoint)} is not one of the templates (${names.join(', ')})`,
    );
  }
  if (spec.onExit !== undefined && !names.includes(spec.onExit)) {
    problems.push(`spec.onExit ${JSON.stringify(spec.onExit)} is not one of the templates`);
  }
  for (const template of templates) {
    for (const invocation of invocationsOf(template)) {
      if (invocation.hasTemplateRef) {
        problems.push(
          `template ${invocation.caller}: ${invocation.name} uses templateRef; the built-in templates are self-contained`,
        );
      } else if (invocation.template === undefined || !names.includes(invocation.template)) {
        problems.push(
          `template ${invocation.caller}: ${invocation.name} calls template ${JSON.stringify(invocation.template)}, which does not exist`,
        );
      }
    }
  }
  return problems;
}

/** Each step and task passes every input its template requires (no value of its own), and nothing it does not declare. */
export function argumentProblems(workflowTemplate: Json): string[] {
  const templates = new Map(templatesOf(workflowTemplate).map((template) => [String(template.name), template]));
  const problems: string[] = [];
  for (const template of templates.values()) {
    for (const invocation of invocationsOf(template)) {
      const target = invocation.template === undefined ? undefined : templates.get(invocation.template);
      if (!target) continue;
      const inputs: Json[] = Array.isArray(target.inputs?.parameters) ? target.inputs.parameters : [];
      for (const input of inputs) {
        const required = input.value === undefined && input.default === undefined && input.valueFrom === undefined;
        if (required && !invocation.arguments.includes(input.name)) {
          problems.push(
            `template ${invocation.caller}: ${invocation.name} does not pass input ${input.name} of ${target.name}`,
          );
        }
      }
      for (const name of invocation.arguments) {
        if (!inputs.some((input) => input.name === name)) {
          problems.push(
            `template ${invocation.caller}: ${invocation.name} passes ${name}, which ${target.name} does not declare`,
          );
        }
      }
    }
  }
  return problems;
}

const OUTPUT_REFERENCE =
  /\{\{\s*(steps|tasks)\.([A-Za-z0-9_-]+)\.outputs\.(parameters|artifacts)\.([A-Za-z0-9_-]+)\s*\}\}/g;

/**
 * Every `{{steps.X.outputs...}}` / `{{tasks.X.outputs...}}` names a step of the same template
 * that runs earlier (steps: an earlier group) and whose template declares that output.
 */
export function outputReferenceProblems(workflowTemplate: Json): string[] {
  const templates = new Map(templatesOf(workflowTemplate).map((template) => [String(template.name), template]));
  const problems: string[] = [];
  for (const template of templates.values()) {
    const invocations = invocationsOf(template);
    for (const invocation of invocations) {
      for (const { value } of stringsIn(invocation.call)) {
        for (const [, kind, producerName, outputKind, output] of value.matchAll(OUTPUT_REFERENCE)) {
          const where = `template ${template.name}: ${invocation.name} reads ${kind}.${producerName}.outputs.${outputKind}.${output}`;
          const producer = invocations.find((candidate) => candidate.name === producerName);
          if (!producer || (kind === 'steps') !== Array.isArray(template.steps)) {
            problems.push(`${where}, but there is no such ${kind === 'steps' ? 'step' : 'task'}`);
            continue;
          }
          if (kind === 'steps' && producer.group >= invocation.group) {
            problems.push(`${where}, but ${producerName} does not run before it`);
          }
          const produced = templates.get(producer.template ?? '')?.outputs?.[outputKind!];
          if (!(Array.isArray(produced) && produced.some((declared: Json) => declared?.name === output))) {
            problems.push(`${where}, which template ${producer.template} does not declare`);
          }
        }
      }
    }
  }
  return problems;
}

/** A tag other than `latest`, or a sha256 digest. */
export function isPinnedImage(image: string): boolean {
  const [name, digest, ...rest] = image.split('@');
  if (rest.length > 0 || name === undefined || name === '') return false;
  if (digest !== undefined) return /^sha256:[a-f0-9]{64}$/.test(digest);
  const lastSegment = name.slice(name.lastIndexOf('/') + 1);
  const colon = lastSegment.lastIndexOf(':');
  if (colon < 0) return false;
  const tag = lastSegment.slice(colon + 1);
  return /^\w[\w.-]{0,127}$/.test(tag) && tag !== 'latest';
}

export function imageProblems(value: unknown): string[] {
  const problems: string[] = [];
  for (const { path, container } of containersIn(value)) {
    const image = container.image;
    if (typeof image !== 'string') problems.push(`${path}: no image`);
    else if (!isPinnedImage(image))
      problems.push(`${path}: image ${image} is not pinned to a version (tag other than latest, or digest)`);
    else if (!(ALLOWED_IMAGES as readonly string[]).includes(image))
      problems.push(`${path}: image ${image} is not one of ${ALLOWED_IMAGES.join(', ')}`);
  }
  return problems;
}

const RESTRICTED = {
  runAsNonRoot: true,
  runAsUser: 65534,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
} as const;

/**
 * Every container: cpu and memory requests and limits; the restricted security context; and,
 * since the root filesystem is read-only, HOME=/tmp on an emptyDir mounted at /tmp (kubectl
 * writes its cache under $HOME).
 */
export function hardeningProblems(workflowTemplate: Json): string[] {
  const problems: string[] = [];
  const volumes: Json[] = Array.isArray(workflowTemplate?.spec?.volumes) ? workflowTemplate.spec.volumes : [];
  for (const { path, container } of containersIn(workflowTemplate)) {
    for (const kind of ['requests', 'limits']) {
      for (const resource of ['cpu', 'memory']) {
        if (typeof container.resources?.[kind]?.[resource] !== 'string')
          problems.push(`${path}: no resources.${kind}.${resource}`);
      }
    }
    const context = container.securityContext ?? {};
    for (const [field, expected] of Object.entries(RESTRICTED)) {
      if (context[field] !== expected)
        problems.push(`${path}: securityContext.${field} is ${JSON.stringify(context[field])}, not ${expected}`);
    }
    if (!(Array.isArray(context.capabilities?.drop) && context.capabilities.drop.includes('ALL'))) {
      problems.push(`${path}: securityContext.capabilities.drop does not include ALL`);
    }
    const env: Json[] = Array.isArray(container.env) ? container.env : [];
    if (!env.some((variable) => variable.name === 'HOME' && variable.value === '/tmp'))
      problems.push(`${path}: no env HOME=/tmp`);
    const mount = (Array.isArray(container.volumeMounts) ? container.volumeMounts : []).find(
      (candidate: Json) => candidate.mountPath === '/tmp',
    );
    const volume = mount ? volumes.find((candidate) => candidate.name === mount.name) : undefined;
    if (!mount) problems.push(`${path}: nothing is mounted at /tmp`);
    else if (!volume?.emptyDir) problems.push(`${path}: /tmp is not an emptyDir from spec.volumes`);
  }
  return problems;
}

export interface ScriptSite {
  /** Path of the script object, e.g. `spec.templates[1].script`. */
  path: string;
  template: string;
  source: string;
  /** Names of the container's environment variables. */
  env: string[];
}

export function scriptsIn(workflowTemplate: Json): ScriptSite[] {
  const sites: ScriptSite[] = [];
  templatesOf(workflowTemplate).forEach((template, index) => {
    if (isObject(template.script) && typeof template.script.source === 'string') {
      sites.push({
        path: `spec.templates[${index}].script`,
        template: String(template.name),
        source: template.script.source,
        env: Array.isArray(template.script.env)
          ? template.script.env.map((variable: Json) => String(variable.name))
          : [],
      });
    }
  });
  return sites;
}

export interface Expansion {
  name: string;
  /** Inside double quotes, where the value stays one word and is never globbed. */
  quoted: boolean;
  line: number;
}

type ShellContext = { kind: 'plain' | 'double' | 'command' | 'arithmetic' | 'brace'; quoted: boolean };

/**
 * The parameter expansions (`$X`, `${X...}`) of a POSIX shell script, each with whether it
 * sits inside double quotes. Understands single and double quotes, backslashes, comments,
 * `$(...)` (which starts a fresh quoting context, even inside double quotes), `$((...))` and
 * nested `${...}`. Not a full parser: good enough for scripts written to be checked by it
 * (no here-documents, no backquotes).
 */
export function shellExpansions(source: string): Expansion[] {
  const expansions: Expansion[] = [];
  const stack: ShellContext[] = [{ kind: 'plain', quoted: false }];
  let line = 1;
  let i = 0;
  const advance = (count: number) => {
    for (let k = 0; k < count && i < source.length; k++, i++) if (source[i] === '\n') line++;
  };
  while (i < source.length) {
    const context = stack[stack.length - 1]!;
    const c = source[i]!;
    const quotedHere = context.kind === 'double' || (context.kind === 'brace' && context.quoted);
    if (c === '\\') {
      advance(2);
      continue;
    }
    if (context.kind === 'double') {
      if (c === '"') {
        stack.pop();
        advance(1);
        continue;
      }
    } else {
      if (c === "'" && !quotedHere) {
        const end = source.indexOf("'", i + 1);
        advance((end < 0 ? source.length : end + 1) - i);
        continue;
      }
      if (c === '"') {
        stack.push({ kind: 'double', quoted: true });
        advance(1);
        continue;
      }
      if (
        c === '#' &&
        (context.kind === 'plain' || context.kind === 'command') &&
        (i === 0 || /[\s;|&(]/.test(source[i - 1]!))
      ) {
        const end = source.indexOf('\n', i);
        advance((end < 0 ? source.length : end) - i);
        continue;
      }
      if (c === ')' && context.kind === 'command') {
        stack.pop();
        advance(1);
        continue;
      }
      if (c === ')' && context.kind === 'arithmetic' && source[i + 1] === ')') {
        stack.pop();
        advance(2);
        continue;
      }
      if (c === '}' && context.kind === 'brace') {
        stack.pop();
        advance(1);
        continue;
      }
    }
    if (c === '$') {
      if (source.startsWith('$((', i)) {
        stack.push({ kind: 'arithmetic', quoted: false });
        advance(3);
        continue;
      }
      if (source[i + 1] === '(') {
        stack.push({ kind: 'command', quoted: false });
        advance(2);
        continue;
      }
      if (source[i + 1] === '{') {
        const name = /^(#?)([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])/.exec(source.slice(i + 2));
        if (name) expansions.push({ name: name[2]!, quoted: quotedHere, line });
        stack.push({ kind: 'brace', quoted: quotedHere });
        advance(2 + (name ? name[0].length : 0));
        continue;
      }
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i + 1));
      if (name) {
        expansions.push({ name: name[0], quoted: quotedHere, line });
        advance(1 + name[0].length);
        continue;
      }
    }
    advance(1);
  }
  return expansions;
}

const ENVIRONMENT_NAME = /^[A-Z_][A-Z0-9_]*$/;

/** Uppercase variables (the template's parameters, by convention) expanded outside double quotes. */
export function unquotedParameterExpansions(source: string): Expansion[] {
  return shellExpansions(source).filter((expansion) => !expansion.quoted && ENVIRONMENT_NAME.test(expansion.name));
}

/** Uppercase names the script assigns itself (`NAME=...` at the start of a command). */
export function assignedVariables(source: string): string[] {
  return [...new Set([...source.matchAll(/(?:^|[\s;&|(])([A-Z_][A-Z0-9_]*)=/gm)].map((match) => match[1]!))];
}

/** Every uppercase variable a script reads comes from its env (or the shell), and every env entry is read. */
export function scriptVariableProblems(site: ScriptSite): string[] {
  const problems: string[] = [];
  const known = new Set([...site.env, ...assignedVariables(site.source), 'PATH']);
  const read = new Set(
    shellExpansions(site.source)
      .map((expansion) => expansion.name)
      .filter((name) => ENVIRONMENT_NAME.test(name)),
  );
  for (const name of read) {
    if (!known.has(name))
      problems.push(`template ${site.template}: the script reads $${name}, which its env does not set`);
  }
  for (const name of site.env) {
    if (name !== 'HOME' && !read.has(name))
      problems.push(`template ${site.template}: env ${name} is set but the script never reads it`);
  }
  return problems;
}

/** `sh -n`: the script parses. */
export function shellSyntaxProblems(source: string): string[] {
  const result = spawnSync('sh', ['-n'], { input: source, encoding: 'utf8' });
  if (result.error) throw result.error;
  return result.status === 0 ? [] : [result.stderr.trim() || `sh -n exited ${result.status}`];
}

export interface FakeAnswer {
  /** Every one of these must be among the call's arguments; the first answer that matches is used. */
  when: string[];
  stdout?: string;
  stderr?: string;
  exit?: number;
  /** Answers one call only, so that a later call sees the next matching answer (the cluster changed). */
  once?: boolean;
}

export type FakeProgram = 'kubectl' | 'curl' | 'nc' | 'getent';

export interface FakeCall {
  program: FakeProgram | 'sleep';
  args: string[];
  /** What the program read from stdin, for a call given `-f -` (a request body). */
  stdin?: string;
}

export interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: FakeCall[];
  /** Calls to one program, arguments only. */
  callsTo(program: FakeCall['program']): string[][];
  /** A file the script wrote under its /tmp (the pod's emptyDir), or undefined. */
  file(path: string): string | undefined;
  /** What the script wrote to /dev/termination-log, which Argo makes the failed step's message. */
  terminationMessage: string;
}

/**
 * A fake program in plain sh (a node process per call would dominate the run time): records
 * its arguments NUL-separated, one record per call (with what it read from stdin after a 0x1f
 * when called with `-f -`), then answers with the first answer whose tokens are all among its
 * arguments. Answers live in files: answers/PROGRAM.N.{when,stdout,stderr,exit} (+ .once, and
 * .used once consumed).
 */
function fakeProgram(program: string): string {
  return `#!/bin/sh
{
  printf '%s\\0' ${program}
  previous=''
  body=no
  for arg in "$@"; do
    printf '%s\\0' "$arg"
    if [ "$previous" = -f ] && [ "$arg" = - ]; then body=yes; fi
    previous=$arg
  done
  if [ "$body" = yes ]; then printf '\\037'; cat; fi
  printf '\\036'
} >>"$FAKE_DIR/calls"
[ ${program} = sleep ] && exit 0
answers="$FAKE_DIR/answers/${program}"
i=0
while [ -f "$answers.$i.when" ]; do
  if [ ! -f "$answers.$i.used" ]; then
    match=yes
    while IFS= read -r token; do
      found=no
      for arg in "$@"; do
        if [ "$arg" = "$token" ]; then found=yes; break; fi
      done
      if [ "$found" = no ]; then match=no; break; fi
    done <"$answers.$i.when"
    if [ "$match" = yes ]; then
      if [ -f "$answers.$i.once" ]; then : >"$answers.$i.used"; fi
      cat "$answers.$i.stdout"
      cat "$answers.$i.stderr" >&2
      exit "$(cat "$answers.$i.exit")"
    fi
  fi
  i=$((i + 1))
done
echo "${program}: no fake answer for: $*" >&2
exit 97
`;
}

const FAKE_PROGRAMS: FakeCall['program'][] = ['kubectl', 'curl', 'nc', 'getent', 'sleep'];

/**
 * Runs a template's script with sh, as Argo would, against fake kubectl, curl, nc and getent
 * (and a sleep that returns at once); jq, grep and the rest are the machine's own. The pod's
 * /tmp is an emptyDir, so the script's /tmp paths are moved into a fresh directory.
 */
export function runScript(
  source: string,
  options: { env: Record<string, string>; answers?: Partial<Record<FakeProgram, FakeAnswer[]>> },
): ScriptRun {
  const workdir = mkdtempSync(join(tmpdir(), 'kube-sentinel-wft-'));
  try {
    const bin = join(workdir, 'bin');
    const podTmp = join(workdir, 'tmp');
    mkdirSync(bin);
    mkdirSync(podTmp);
    for (const program of FAKE_PROGRAMS) {
      const path = join(bin, program);
      writeFileSync(path, fakeProgram(program));
      chmodSync(path, 0o755);
    }
    const answersDir = join(workdir, 'answers');
    mkdirSync(answersDir);
    for (const [program, answers] of Object.entries(options.answers ?? {})) {
      (answers ?? []).forEach((answer, index) => {
        const base = join(answersDir, `${program}.${index}`);
        if (answer.when.some((token) => token.includes('\n')))
          throw new Error(`a fake answer token contains a newline: ${JSON.stringify(answer.when)}`);
        writeFileSync(`${base}.when`, answer.when.map((token) => `${token}\n`).join(''));
        writeFileSync(`${base}.stdout`, answer.stdout ?? '');
        writeFileSync(`${base}.stderr`, answer.stderr ?? '');
        writeFileSync(`${base}.exit`, String(answer.exit ?? 0));
        if (answer.once) writeFileSync(`${base}.once`, '');
      });
    }
    // The kubelet creates the termination message file before the container starts.
    const terminationLog = join(workdir, 'termination-log');
    writeFileSync(terminationLog, '');
    const script = join(workdir, 'script.sh');
    writeFileSync(script, source.replaceAll('/tmp/', `${podTmp}/`).replaceAll('/dev/termination-log', terminationLog));
    const result = spawnSync('sh', [script], {
      cwd: workdir,
      encoding: 'utf8',
      timeout: 30_000,
      env: {
        PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        HOME: podTmp,
        FAKE_DIR: workdir,
        ...options.env,
      },
    });
    if (result.error) throw result.error;
    const callsFile = join(workdir, 'calls');
    const calls: FakeCall[] = existsSync(callsFile)
      ? readFileSync(callsFile, 'utf8')
          .split('\u001e')
          .filter((record) => record !== '')
          .map((record) => {
            const [argv = '', stdin] = record.split('\u001f');
            const [program, ...args] = argv.split('\0').slice(0, -1);
            return { program: program as FakeCall['program'], args, ...(stdin === undefined ? {} : { stdin }) };
          })
      : [];
    const files = new Map<string, string>();
    const collect = (dir: string, prefix: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) collect(join(dir, entry.name), `${prefix}${entry.name}/`);
        else files.set(`/tmp/${prefix}${entry.name}`, readFileSync(join(dir, entry.name), 'utf8'));
      }
    };
    collect(podTmp, '');
    return {
      status: result.status,
      stdout: result.stdout,
      stderr: result.stderr,
      calls,
      callsTo: (program) => calls.filter((call) => call.program === program).map((call) => call.args),
      file: (path) => files.get(path),
      terminationMessage: readFileSync(terminationLog, 'utf8'),
    };
  } finally {
    rmSync(workdir, { recursive: true, force: true });
  }
}

/** The script of one template of a built-in WorkflowTemplate. */
export function scriptOf(workflowTemplate: Json, templateName: string): string {
  const site = scriptsIn(workflowTemplate).find((candidate) => candidate.template === templateName);
  if (!site) throw new Error(`${workflowTemplate?.metadata?.name} has no script template ${templateName}`);
  return site.source;
}

/** jq is part of the image; the behaviour tests run the scripts with the machine's own. */
export function jqProblem(): string | undefined {
  const result = spawnSync('jq', ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? undefined : 'jq is required to run the WorkflowTemplate scripts (apt-get install jq)';
}
