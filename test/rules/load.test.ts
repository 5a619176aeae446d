import assert from 'node:assert/strict';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import fsPromises, { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { LoadResult } from '../../src/rules/load.js';
import { loadRules } from '../../src/rules/load.js';
import { parseRulesText } from '../../src/rules/parse.js';
import type { RuleSet } from '../../src/rules/types.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Strips the first newline and the common indentation, so line 1 is the first line written. */
function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, '');
  const indent = Math.min(
    ...text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => /^ */.exec(line)?.[0].length ?? 0),
  );
  return text
    .split('\n')
    .map((line) => line.slice(indent))
    .join('\n');
}

function errorsOf(text: string): string[] {
  return parseRulesText(text, 'rules.yaml').errors;
}

function loaded(result: LoadResult): RuleSet {
  if (!result.ok) throw new Error(`expected the load to succeed, got:\n${result.errors.join('\n')}`);
  return result.ruleSet;
}

function failed(result: LoadResult): string[] {
  if (result.ok) throw new Error('expected the load to fail');
  return result.errors;
}

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kube-sentinel-rules-'));
  tempDirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

/**
 * A valid rule as an item of `rules:` (lines 2-9 after a `rules:` line), for cases that change or
 * append one line; appended lines start at line 10.
 */
const VALID_RULE = [
  '  - name: db-failure',
  '    match:',
  '      pattern: "database connection failed"',
  '    priority: P1',
  '    remediation:',
  '      action: trigger-argo-workflow',
  '      params:',
  '        workflow_template: diagnose-and-recover',
  '',
].join('\n');

describe('parseRulesText', () => {
  it('reads every field of the documented format', async () => {
    const ruleSet = loaded(await loadRules(join(fixtures, 'full-format.yaml')));
    const [complex, inline] = ruleSet.rules;
    assert.deepEqual(ruleSet.excludedNamespaces, ['kube-system', 'cert-manager']);
    assert.deepEqual(
      {
        ...complex,
        match: { ...complex?.match, labels: complex?.match.labels.map((m) => `${m.name}${m.op}${m.value}`) },
      },
      {
        name: 'complex-failure-recovery',
        priority: 'P1',
        enabled: true,
        onResolved: false,
        match: {
          pattern: 'database connection failed|connection pool exhausted',
          labels: ['severity=~critical|warning', 'namespace!=kube-system'],
          namespaces: ['shop'],
          excludedNamespaces: ['kube-system'],
          fields: ['annotations.description', 'labels.reason'],
        },
        remediation: {
          action: 'trigger-argo-workflow',
          params: {
            workflowTemplate: 'diagnose-and-recover',
            clusterScope: true,
            namespace: 'argo',
            serviceAccount: 'argo-workflow',
            arguments: [
              { name: 'replicas', value: '5' },
              { name: 'reason', value: '{{ labels.reason }}' },
            ],
          },
          cooldownMs: 600_000,
          cooldownKey: ['namespace', 'deployment'],
          maxAttempts: 5,
          attemptWindowMs: 2 * 3600_000,
          approval: 'required',
          approvalTimeoutMs: 30 * 60_000,
          runbookUrl: 'https://runbooks.example.com/database',
        },
        source: { file: join(fixtures, 'full-format.yaml'), line: 4 },
      },
    );
    assert.deepEqual(
      {
        name: inline?.name,
        enabled: inline?.enabled,
        onResolved: inline?.onResolved,
        cooldownMs: inline?.remediation.cooldownMs,
        cooldownKey: inline?.remediation.cooldownKey,
        closedLoop: {
          maxAttempts: inline?.remediation.maxAttempts,
          attemptWindowMs: inline?.remediation.attemptWindowMs,
          approval: inline?.remediation.approval,
          approvalTimeoutMs: inline?.remediation.approvalTimeoutMs,
          runbookUrl: inline?.remediation.runbookUrl,
        },
        params: inline?.remediation.params,
      },
      {
        name: 'inline-restart',
        enabled: false,
        onResolved: true,
        cooldownMs: 300_000,
        cooldownKey: null,
        closedLoop: {
          maxAttempts: 3,
          attemptWindowMs: 3600_000,
          approval: 'none',
          approvalTimeoutMs: 3600_000,
          runbookUrl: undefined,
        },
        params: {
          workflowName: 'restart',
          clusterScope: false,
          image: 'bitnami/kubectl:1.33.1',
          inlineAction: 'restart',
          arguments: [
            { name: 'replicas', value: '3' },
            { name: 'dry', value: 'false' },
            { name: 'summary', value: '{{annotations.summary}}' },
          ],
        },
      },
    );
  });

  it('normalizes priority aliases to P1-P4', () => {
    const priorities = ['critical', 'high', 'medium', 'low', 'P1', 'P4'].map((priority) => {
      const { rules, errors } = parseRulesText(
        VALID_RULE.replace('priority: P1', `priority: ${priority}`).replace(/^/, 'rules:\n'),
        'rules.yaml',
      );
      assert.deepEqual(errors, []);
      return rules[0]?.priority;
    });
    assert.deepEqual(priorities, ['P1', 'P2', 'P3', 'P4', 'P1', 'P4']);
  });

  it('returns null excluded namespaces when the file does not set them, so the default applies', () => {
    assert.equal(parseRulesText(`rules:\n${VALID_RULE}`, 'rules.yaml').excludedNamespaces, null);
  });

  it('accepts image references pinned by tag, digest or behind a registry port', () => {
    for (const image of [
      'bitnami/kubectl:1.33.1',
      'registry.local:5000/kubectl:v1',
      `kubectl@sha256:${'a'.repeat(64)}`,
    ]) {
      const text = yaml`
        rules:
          - name: inline
            match: {pattern: "x"}
            priority: P1
            remediation:
              action: trigger-argo-workflow
              params: {workflow_name: fix, image: "${image}"}
      `;
      assert.deepEqual(errorsOf(text), [], image);
    }
  });

  describe('reports each problem as file:line: message', () => {
    const cases: { problem: string; text: string; errors: string[] }[] = [
      {
        problem: 'a YAML syntax error',
        text: yaml`
          rules:
            - name: a
              match: {pattern: "x"
            - name: b
        `,
        errors: ['rules.yaml:4: Flow map in block collection must be sufficiently indented and end with a }'],
      },
      {
        problem: 'a duplicate key',
        text: yaml`
          rules:
            - name: a
              name: b
        `,
        errors: ['rules.yaml:3: Map keys must be unique'],
      },
      {
        problem: 'an unknown field in match, by its path',
        text: yaml`
          rules:
            - name: db-failure
              match:
                patern: "database"
                pattern: "database"
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params:
                  workflow_template: diagnose-and-recover
        `,
        errors: ['rules.yaml:4: unknown field "match.patern"'],
      },
      {
        problem: 'unknown fields at the top, rule, remediation, params and argument levels',
        text: yaml`
          rulez: []
          rules:
            - name: db-failure
              descripton: typo
              match:
                pattern: "database"
              priority: P1
              remediation:
                action: trigger-argo-workflow
                cooldwn: 5m
                params:
                  workflow_templat: x
                  workflow_template: diagnose-and-recover
                  arguments:
                    - name: replicas
                      value: "1"
                      vaule: "2"
        `,
        errors: [
          'rules.yaml:1: unknown field "rulez"',
          'rules.yaml:4: unknown field "descripton"',
          'rules.yaml:10: unknown field "remediation.cooldwn"',
          'rules.yaml:12: unknown field "remediation.params.workflow_templat"',
          'rules.yaml:17: unknown field "remediation.params.arguments[0].vaule"',
        ],
      },
      {
        problem: 'a missing name',
        text: yaml`
          rules:
            - match:
                pattern: "x"
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params:
                  workflow_template: t
        `,
        errors: ['rules.yaml:2: name is required'],
      },
      {
        problem: 'a name that is not a DNS-1123 label',
        text: `rules:\n${VALID_RULE.replace('name: db-failure', 'name: DB_Failure')}`,
        errors: [
          `rules.yaml:2: name "DB_Failure" must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit`,
        ],
      },
      {
        problem: 'a name longer than 63 characters',
        text: `rules:\n${VALID_RULE.replace('name: db-failure', `name: ${'a'.repeat(64)}`)}`,
        errors: [`rules.yaml:2: name "${'a'.repeat(64)}" must be at most 63 characters`],
      },
      {
        problem: 'a duplicate name within the file, pointing at the first',
        text: `rules:\n${VALID_RULE}${VALID_RULE}`,
        errors: ['rules.yaml:10: duplicate rule name "db-failure" (first defined at rules.yaml:2)'],
      },
      {
        problem: 'an invalid RE2 pattern, with the engine message',
        text: `rules:\n${VALID_RULE.replace('"database connection failed"', '"(?=database)"')}`,
        errors: [
          'rules.yaml:4: match.pattern is not a valid RE2 regular expression: error parsing regexp: invalid or unsupported Perl syntax: `(?=`',
        ],
      },
      {
        problem: 'a backreference in the pattern',
        text: `rules:\n${VALID_RULE.replace('"database connection failed"', "'(a)\\1'")}`,
        errors: [
          'rules.yaml:4: match.pattern is not a valid RE2 regular expression: error parsing regexp: invalid escape sequence: `\\1`',
        ],
      },
      {
        problem: 'an invalid matcher, by its index',
        text: yaml`
          rules:
            - name: db-failure
              match:
                labels:
                  - 'severity="critical"'
                  - 'severity=~"(a)\\1"'
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params:
                  workflow_template: t
        `,
        errors: [
          'rules.yaml:6: match.labels[1]: invalid regular expression in matcher severity=~"(a)\\1": error parsing regexp: invalid escape sequence: `\\1`',
        ],
      },
      {
        problem: 'an invalid priority',
        text: `rules:\n${VALID_RULE.replace('priority: P1', 'priority: P5')}`,
        errors: ['rules.yaml:5: priority "P5" is not one of P1, P2, P3, P4, critical, high, medium, low'],
      },
      {
        problem: 'a missing priority',
        text: `rules:\n${VALID_RULE.replace('    priority: P1\n', '')}`,
        errors: ['rules.yaml:2: priority is required (P1-P4, or critical, high, medium, low)'],
      },
      {
        problem: 'an invalid duration',
        text: `rules:\n${VALID_RULE}      cooldown: 10 minutes\n`,
        errors: ['rules.yaml:10: remediation.cooldown "10 minutes" is not a duration (like 30s, 10m, 1h30m)'],
      },
      {
        problem: 'a cooldown under a second',
        text: `rules:\n${VALID_RULE}      cooldown: 0s\n`,
        errors: ['rules.yaml:10: remediation.cooldown "0s" must be at least 1s'],
      },
      {
        problem: 'a missing action, at the remediation key',
        text: `rules:\n${VALID_RULE.replace('      action: trigger-argo-workflow\n', '')}`,
        errors: ['rules.yaml:6: remediation.action is required (trigger-argo-workflow)'],
      },
      {
        problem: 'a missing match and remediation, at the rule',
        text: 'rules:\n  - name: bare\n    priority: P1\n',
        errors: [
          'rules.yaml:2: match needs a pattern or labels (to match every alert, say pattern: ".*")',
          'rules.yaml:2: remediation is required',
        ],
      },
      {
        problem: 'a pattern YAML reads as a number, suggesting quotes',
        text: `rules:\n${VALID_RULE.replace('"database connection failed"', '503')}`,
        errors: ['rules.yaml:4: match.pattern must be a string (quote it: "503")'],
      },
      {
        problem: 'an unsupported action',
        text: `rules:\n${VALID_RULE.replace('action: trigger-argo-workflow', 'action: run-script')}`,
        errors: [
          'rules.yaml:7: remediation.action "run-script" is not supported; the only action is trigger-argo-workflow',
        ],
      },
      {
        problem: 'neither workflow_template nor workflow_name',
        text: `rules:\n${VALID_RULE.replace('workflow_template: diagnose-and-recover', 'namespace: argo')}`,
        errors: [
          'rules.yaml:8: remediation.params needs workflow_template (a WorkflowTemplate) or workflow_name (an inline workflow)',
        ],
      },
      {
        problem: 'both workflow_template and workflow_name',
        text: `rules:\n${VALID_RULE}        workflow_name: inline\n`,
        errors: ['rules.yaml:10: remediation.params has both workflow_template and workflow_name; give exactly one'],
      },
      {
        problem: 'names that are not DNS-1123',
        text: yaml`
          rules:
            - name: db-failure
              match: {pattern: "x"}
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params:
                  workflow_template: Diagnose_And_Recover
                  namespace: Argo
                  service_account: argo_workflow
        `,
        errors: [
          `rules.yaml:8: remediation.params.workflow_template "Diagnose_And_Recover" must be a DNS-1123 name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`,
          `rules.yaml:9: remediation.params.namespace "Argo" must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit`,
          `rules.yaml:10: remediation.params.service_account "argo_workflow" must be a DNS-1123 name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`,
        ],
      },
      {
        problem: 'an inline workflow_name that is not DNS-1123',
        text: `rules:\n${VALID_RULE.replace('workflow_template: diagnose-and-recover', 'workflow_name: Fix!')}`,
        errors: [
          `rules.yaml:9: remediation.params.workflow_name "Fix!" must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit`,
        ],
      },
      {
        problem: 'arguments that are not a list of {name, value}',
        text: `rules:\n${VALID_RULE}        arguments: '{"name": "replicas", "value": "5"}'\n`,
        errors: ['rules.yaml:10: remediation.params.arguments must be a JSON array of {"name", "value"} objects'],
      },
      {
        problem: 'argument values that are objects, and missing values',
        text: yaml`
          rules:
            - name: db-failure
              match: {pattern: "x"}
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params:
                  workflow_template: t
                  arguments:
                    - name: replicas
                      value: {count: 5}
                    - name: mode
        `,
        errors: [
          'rules.yaml:11: remediation.params.arguments[0].value must be a string, number or boolean',
          'rules.yaml:12: remediation.params.arguments[1].value is required',
        ],
      },
      {
        problem: 'an object value in JSON arguments',
        text: `rules:\n${VALID_RULE}        arguments: '[{"name": "replicas", "value": {"n": 5}}]'\n`,
        errors: ['rules.yaml:10: remediation.params.arguments[0].value must be a string, number or boolean'],
      },
      {
        problem: 'invalid, reserved and duplicate argument names',
        text: yaml`
          rules:
            - name: db-failure
              match: {pattern: "x"}
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params:
                  workflow_template: t
                  arguments:
                    - {name: "bad name", value: "1"}
                    - {name: pod, value: "1"}
                    - {name: replicas, value: "1"}
                    - {name: replicas, value: "2"}
        `,
        errors: [
          `rules.yaml:10: remediation.params.arguments[0].name "bad name" must be letters, digits, '_' and '-'`,
          'rules.yaml:11: remediation.params.arguments[1].name "pod" is reserved: every Workflow already gets namespace, pod, container, alertname, priority and rule',
          'rules.yaml:13: remediation.params.arguments[3].name "replicas" is given twice (first on line 12)',
        ],
      },
      {
        problem: 'argument names that become the same environment variable, and {{ in a script',
        text: yaml`
          rules:
            - name: db-failure
              match: {pattern: "x"}
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params:
                  workflow_name: fix
                  script: 'kubectl delete pod {{workflow.parameters.pod}}'
                  arguments:
                    - {name: my-arg, value: "1"}
                    - {name: my_arg, value: "2"}
        `,
        errors: [
          'rules.yaml:9: remediation.params.script must not contain "{{": read parameters from the environment ("$POD", "$NAMESPACE", "$CONTAINER", arguments upper-cased)',
          'rules.yaml:12: remediation.params.arguments[1].name "my_arg" and "my-arg" both become the environment variable MY_ARG',
        ],
      },
      {
        problem: 'inline arguments whose variables the container already has, and names Argo refuses',
        text: yaml`
          rules:
            - name: db-failure
              match: {pattern: "x"}
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params:
                  workflow_name: fix
                  arguments:
                    - {name: Namespace, value: "1"}
                    - {name: home, value: "2"}
                    - {name: log.lines, value: "3"}
                    - {name: "ü", value: "4"}
                    - {name: "", value: "5"}
        `,
        errors: [
          'rules.yaml:10: remediation.params.arguments[0].name "Namespace" and "namespace" both become the environment variable NAMESPACE',
          'rules.yaml:11: remediation.params.arguments[1].name "home" becomes the environment variable HOME, which the inline workflow sets itself',
          `rules.yaml:12: remediation.params.arguments[2].name "log.lines" must be letters, digits, '_' and '-'`,
          `rules.yaml:13: remediation.params.arguments[3].name "ü" must be letters, digits, '_' and '-'`,
          `rules.yaml:14: remediation.params.arguments[4].name "" must be letters, digits, '_' and '-'`,
        ],
      },
      {
        problem: 'nothing for the same names with a WorkflowTemplate, which gets no environment variables',
        text: yaml`
          rules:
            - name: db-failure
              match: {pattern: "x"}
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params:
                  workflow_template: t
                  arguments:
                    - {name: Namespace, value: "1"}
                    - {name: home, value: "2"}
        `,
        errors: [],
      },
      {
        problem: 'template expressions other than alert labels and annotations',
        text: yaml`
          rules:
            - name: db-failure
              match: {pattern: "x"}
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params:
                  workflow_template: t
                  arguments:
                    - {name: ok, value: "{{labels.pod}}-{{ annotations.summary }}"}
                    - {name: expr, value: "{{=sprig.upper('x')}}"}
                    - {name: step, value: "x {{ steps.a.outputs.result }}"}
                    - {name: open, value: "{{ labels.pod"}
        `,
        errors: [
          `rules.yaml:11: remediation.params.arguments[1].value "{{=sprig.upper('x')}}" is not allowed: only {{ labels.NAME }} and {{ annotations.NAME }} are substituted`,
          'rules.yaml:12: remediation.params.arguments[2].value "{{ steps.a.outputs.result }}" is not allowed: only {{ labels.NAME }} and {{ annotations.NAME }} are substituted',
          'rules.yaml:13: remediation.params.arguments[3].value has "{{" without a matching "}}"',
        ],
      },
      {
        problem: 'a template expression inside JSON arguments',
        text: `rules:\n${VALID_RULE}        arguments: '[{"name": "x", "value": "{{workflow.name}}"}]'\n`,
        errors: [
          'rules.yaml:10: remediation.params.arguments[0].value "{{workflow.name}}" is not allowed: only {{ labels.NAME }} and {{ annotations.NAME }} are substituted',
        ],
      },
      {
        problem: 'images that are not pinned',
        text: yaml`
          rules:
            - name: a
              match: {pattern: "x"}
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params: {workflow_name: fix, image: "bitnami/kubectl:latest"}
            - name: b
              match: {pattern: "x"}
              priority: P1
              remediation:
                action: trigger-argo-workflow
                params: {workflow_name: fix, image: "registry.local:5000/kubectl"}
        `,
        errors: [
          'rules.yaml:7: remediation.params.image "bitnami/kubectl:latest" must be pinned: ":latest" moves under you',
          'rules.yaml:13: remediation.params.image "registry.local:5000/kubectl" must be pinned to a tag or digest (it has neither)',
        ],
      },
      {
        problem: 'inline-only params given with workflow_template',
        text: `rules:\n${VALID_RULE}        image: bitnami/kubectl:1.33.1\n        script: echo hi\n        inline_action: restart\n`,
        errors: [
          'rules.yaml:10: remediation.params.image applies only to inline workflows (workflow_name), not with workflow_template',
          'rules.yaml:11: remediation.params.script applies only to inline workflows (workflow_name), not with workflow_template',
          'rules.yaml:12: remediation.params.inline_action applies only to inline workflows (workflow_name), not with workflow_template',
          'rules.yaml:12: remediation.params has both script and inline_action; give one',
        ],
      },
      {
        problem: 'an unknown inline_action',
        text: `rules:\n${VALID_RULE.replace('workflow_template: diagnose-and-recover', 'workflow_name: fix\n        inline_action: reboot')}`,
        errors: [
          'rules.yaml:10: remediation.params.inline_action "reboot" is not one of restart, describe, logs, events, diagnose',
        ],
      },
      {
        problem: 'a match with neither pattern nor labels',
        text: `rules:\n${VALID_RULE.replace('pattern: "database connection failed"', 'namespaces: [shop]')}`,
        errors: ['rules.yaml:3: match needs a pattern or labels (to match every alert, say pattern: ".*")'],
      },
      {
        problem: 'an empty pattern',
        text: `rules:\n${VALID_RULE.replace('"database connection failed"', '""')}`,
        errors: ['rules.yaml:4: match.pattern is empty (to match every alert, say pattern: ".*")'],
      },
      {
        problem: 'fields entries that are not labels.X or annotations.X',
        text: `rules:\n${VALID_RULE.replace('pattern: "database connection failed"', 'pattern: "x"\n      fields: [annotations.description, message, labels.app.kubernetes.io/name]')}`,
        errors: [
          'rules.yaml:5: match.fields[1] "message" must be labels.NAME or annotations.NAME',
          'rules.yaml:5: match.fields[2] "labels.app.kubernetes.io/name" must be labels.NAME or annotations.NAME',
        ],
      },
      {
        problem: 'a namespace entry that is not a DNS-1123 label',
        text: `rules:\n${VALID_RULE.replace('pattern: "database connection failed"', 'pattern: "x"\n      namespaces:\n        - shop\n        - "!Kube_System"')}`,
        errors: [
          `rules.yaml:7: match.namespaces[1] "Kube_System" must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit`,
        ],
      },
      {
        problem: 'booleans that are not booleans',
        text: `rules:\n${VALID_RULE}    enabled: "no"\n    on_resolved: 1\n`,
        errors: ['rules.yaml:10: enabled must be true or false', 'rules.yaml:11: on_resolved must be true or false'],
      },
      {
        problem: 'an invalid cooldown_key',
        text: `rules:\n${VALID_RULE}      cooldown_key: [namespace, app.kubernetes.io/name, namespace]\n`,
        errors: [
          'rules.yaml:10: remediation.cooldown_key[1] "app.kubernetes.io/name" is not a label name',
          'rules.yaml:10: remediation.cooldown_key[2] "namespace" is listed twice',
        ],
      },
      {
        problem: 'a top level that is not a mapping',
        text: `- name: db-failure\n`,
        errors: ['rules.yaml:1: the top level must be a mapping with a "rules" list'],
      },
      {
        problem: 'rules that are not a list',
        text: `\nrules:\n  name: db-failure\n`,
        errors: ['rules.yaml:3: rules must be a list'],
      },
      {
        problem: 'a rule that is not a mapping',
        text: `rules:\n  - just-a-name\n`,
        errors: ['rules.yaml:2: rules[0] must be a mapping'],
      },
    ];
    for (const { problem, text, errors } of cases) {
      it(problem, () => {
        assert.deepEqual(errorsOf(text), errors);
      });
    }
  });

  it('reports arguments that are not valid JSON, with the parser message', () => {
    const errors = errorsOf(`rules:\n${VALID_RULE}        arguments: '[{"name": "replicas",}]'\n`);
    assert.equal(errors.length, 1);
    // The rest of the message is V8's and changes between Node versions.
    assert.match(errors[0] ?? '', /^rules\.yaml:10: remediation\.params\.arguments is not valid JSON: \S/);
  });

  it('still validates disabled rules', () => {
    assert.deepEqual(
      errorsOf(`rules:\n${VALID_RULE.replace('priority: P1', 'priority: urgent')}    enabled: false\n`),
      ['rules.yaml:5: priority "urgent" is not one of P1, P2, P3, P4, critical, high, medium, low'],
    );
  });

  it('returns the valid rules of a file that also has invalid ones', () => {
    const { rules, errors } = parseRulesText(
      `rules:\n${VALID_RULE}${VALID_RULE.replace('db-failure', 'second').replace('P1', 'P9')}`,
      'rules.yaml',
    );
    assert.deepEqual(
      rules.map((rule) => rule.name),
      ['db-failure'],
    );
    assert.equal(errors.length, 1);
  });
});

describe('loadRules', () => {
  it('reports several errors of one file in a single load, in line order', async () => {
    const file = join(fixtures, 'invalid', 'many-errors.yaml');
    assert.deepEqual(failed(await loadRules(file)), [
      `${file}:2: name "Bad_Name" must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit`,
      `${file}:4: unknown field "match.patern"`,
      `${file}:5: match.pattern is not a valid RE2 regular expression: error parsing regexp: invalid escape sequence: \`\\1\``,
      `${file}:6: priority "P9" is not one of P1, P2, P3, P4, critical, high, medium, low`,
      `${file}:11: remediation.cooldown "10 minutes" is not a duration (like 30s, 10m, 1h30m)`,
      `${file}:14: match.labels[1]: invalid label name "bad label" in matcher: bad label="x"`,
      `${file}:17: remediation.action "run-script" is not supported; the only action is trigger-argo-workflow`,
      `${file}:20: remediation.params.image "bitnami/kubectl:latest" must be pinned: ":latest" moves under you`,
    ]);
  });

  it('loads every *.yaml and *.yml directly in a directory, in name order, skipping dot-files and subdirectories', async () => {
    const dir = join(fixtures, 'directory');
    const ruleSet = loaded(await loadRules(dir));
    assert.deepEqual(ruleSet.files, [join(dir, '10-core.yaml'), join(dir, '20-extra.yml')]);
    // P1 from the later file comes before P2 from the earlier one.
    assert.deepEqual(
      ruleSet.rules.map((rule) => rule.name),
      ['db-failure', 'oom-investigation'],
    );
  });

  it('unions excluded_namespaces across files', async () => {
    const ruleSet = loaded(await loadRules(join(fixtures, 'directory')));
    assert.deepEqual(ruleSet.excludedNamespaces, ['kube-system', 'monitoring']);
  });

  it('excludes kube-system when no file sets excluded_namespaces', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'rules.yaml'), `rules:\n${VALID_RULE}`);
    assert.deepEqual(loaded(await loadRules(dir)).excludedNamespaces, ['kube-system']);
  });

  it('excludes nothing when a file sets excluded_namespaces to an empty list', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'rules.yaml'), `excluded_namespaces: []\nrules:\n${VALID_RULE}`);
    assert.deepEqual(loaded(await loadRules(dir)).excludedNamespaces, []);
  });

  it('refuses a name used in two files, saying where the first one is', async () => {
    const dir = join(fixtures, 'duplicates');
    assert.deepEqual(failed(await loadRules(dir)), [
      `${join(dir, 'b.yaml')}:10: duplicate rule name "restart-crashloop" (first defined at ${join(dir, 'a.yaml')}:2)`,
    ]);
  });

  it('refuses an empty file: no rules found', async () => {
    const dir = await tempDir();
    const file = join(dir, 'rules.yaml');
    await writeFile(file, '# nothing yet\n');
    assert.deepEqual(failed(await loadRules(file)), [`no rules found in ${file}`]);
  });

  it('refuses a directory without rules files', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'notes.txt'), 'rules: []\n');
    assert.deepEqual(failed(await loadRules(dir)), [`no rules found in ${dir}`]);
  });

  it('warns about an empty file in a directory that has rules elsewhere', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), '');
    await writeFile(join(dir, 'b.yaml'), `rules:\n${VALID_RULE}`);
    const result = await loadRules(dir);
    assert.ok(result.ok);
    assert.deepEqual(result.warnings, [`${join(dir, 'a.yaml')}: no rules in this file`]);
  });

  it('refuses the whole load when one file of a directory is invalid', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.yaml'), `rules:\n${VALID_RULE}`);
    await writeFile(join(dir, 'b.yaml'), 'rules: {}\n');
    assert.deepEqual(failed(await loadRules(dir)), [`${join(dir, 'b.yaml')}:1: rules must be a list`]);
  });

  it('names a path that does not exist', async () => {
    const missing = join(await tempDir(), 'absent.yaml');
    assert.deepEqual(failed(await loadRules(missing)), [`${missing}: no such file or directory`]);
  });

  it('loads a ConfigMap mount: visible symlinks into ..data, internals skipped', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, '..2026_01_01_00_00_00.000000001'));
    await writeFile(join(dir, '..2026_01_01_00_00_00.000000001', 'rules.yaml'), `rules:\n${VALID_RULE}`);
    await symlink('..2026_01_01_00_00_00.000000001', join(dir, '..data'));
    await symlink(join('..data', 'rules.yaml'), join(dir, 'rules.yaml'));
    const ruleSet = loaded(await loadRules(dir));
    assert.deepEqual(ruleSet.files, [join(dir, 'rules.yaml')]);
    assert.deepEqual(
      ruleSet.rules.map((rule) => rule.name),
      ['db-failure'],
    );
  });

  it('reads a ConfigMap mount again when ..data is swapped mid-read, never mixing two versions', async (t) => {
    const dir = await tempDir();
    const publish = (version: string) => {
      mkdirSync(join(dir, `..${version}`));
      for (const name of ['a', 'b'])
        writeFileSync(
          join(dir, `..${version}`, `${name}.yaml`),
          `rules:\n${VALID_RULE.replace('db-failure', `${name}-${version}`)}`,
        );
      symlinkSync(`..${version}`, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    };
    publish('v1');
    for (const name of ['a', 'b']) symlinkSync(join('..data', `${name}.yaml`), join(dir, `${name}.yaml`));
    // kubelet swaps ..data just after a.yaml was read, before b.yaml is.
    const readFile = fsPromises.readFile;
    let swapped = false;
    t.mock.method(fsPromises, 'readFile', async (...args: Parameters<typeof readFile>) => {
      const bytes = await readFile(...args);
      if (!swapped && String(args[0]).endsWith('a.yaml')) {
        swapped = true;
        publish('v2');
      }
      return bytes;
    });
    syncBuiltinESMExports();
    try {
      const ruleSet = loaded(await loadRules(dir));
      assert.ok(swapped);
      assert.deepEqual(
        ruleSet.rules.map((rule) => rule.name),
        ['a-v2', 'b-v2'],
      );
    } finally {
      t.mock.restoreAll();
      syncBuiltinESMExports();
    }
  });

  it('loads the shipped default rules', async () => {
    const rulesDir = fileURLToPath(new URL('../../rules/', import.meta.url));
    const ruleSet = loaded(await loadRules(rulesDir));
    assert.ok(ruleSet.rules.length > 0);
  });
});
