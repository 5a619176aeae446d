import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { isDns1123Label, isDns1123Subdomain, labelProblems, sharedPath, validateArgoObject } from './argo-schema.js';
import type { Json } from './workflowtemplates.js';

const EXAMPLES = sharedPath(
  'argo/examples',
  'examples/ from argoproj/argo-workflows at f016ad89eb269d282aec06dc491c29f396a38df4',
);

interface ExampleDocument {
  where: string;
  object: Record<string, unknown>;
}

function exampleDocuments(): ExampleDocument[] {
  const documents: ExampleDocument[] = [];
  const files = readdirSync(EXAMPLES, { recursive: true, encoding: 'utf8' })
    .filter((file) => /\.ya?ml$/.test(file))
    .sort();
  for (const file of files) {
    parseAllDocuments(readFileSync(join(EXAMPLES, file), 'utf8')).forEach((document, index) => {
      assert.equal(document.errors.length, 0, `${file} document ${index} does not parse`);
      documents.push({ where: `${file}#${index}`, object: document.toJS() });
    });
  }
  return documents;
}

function validWorkflow(): Json {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Workflow',
    metadata: {
      name: 'kube-sentinel-restart-0a1b2c3d',
      namespace: 'argo',
      labels: { 'app.kubernetes.io/managed-by': 'kube-sentinel' },
      annotations: { 'kube-sentinel.io/target': 'shop/checkout-7d9f8b6c5-x2x9k' },
    },
    spec: {
      entrypoint: 'main',
      arguments: { parameters: [{ name: 'namespace', value: 'shop' }] },
      templates: [{ name: 'main', container: { image: 'busybox:1.36', command: ['true'] } }],
    },
  };
}

describe('validateArgoObject', () => {
  it('accepts all 28 upstream example documents', () => {
    const documents = exampleDocuments();
    assert.equal(documents.length, 28);
    for (const { where, object } of documents) {
      assert.deepEqual(validateArgoObject(object), [], where);
    }
  });

  it('accepts a valid Workflow with labels and annotations', () => {
    assert.deepEqual(validateArgoObject(validWorkflow()), []);
  });

  const mutations: { name: string; mutate: (workflow: Json) => void; expected: string }[] = [
    {
      name: 'an unknown field such as the typo spec.entryPoint',
      mutate: (workflow) => {
        workflow.spec.entryPoint = 'main';
      },
      expected: 'spec.entryPoint: unknown field',
    },
    {
      name: 'a numeric parameter value',
      mutate: (workflow) => {
        workflow.spec.arguments.parameters[0].value = 5;
      },
      expected: 'spec.arguments.parameters[0].value: must be string',
    },
    {
      name: 'a name that is not a DNS-1123 subdomain',
      mutate: (workflow) => {
        workflow.metadata.name = 'Bad_Name';
      },
      expected: 'metadata.name: Invalid value: "Bad_Name"',
    },
    {
      name: 'a label value of 64 characters',
      mutate: (workflow) => {
        workflow.metadata.labels['kube-sentinel.io/rule'] = 'r'.repeat(64);
      },
      expected: `metadata.labels: Invalid value: "${'r'.repeat(64)}": must be no more than 63 characters`,
    },
    {
      name: 'an unknown field inside a template container',
      mutate: (workflow) => {
        workflow.spec.templates[0].container.commands = ['true'];
      },
      expected: 'spec.templates[0].container.commands: unknown field',
    },
    {
      name: 'neither name nor generateName',
      mutate: (workflow) => {
        delete workflow.metadata.name;
      },
      expected: 'metadata.name: Required value',
    },
    {
      name: 'a generateName that leaves no room for the 5-character suffix',
      mutate: (workflow) => {
        delete workflow.metadata.name;
        workflow.metadata.generateName = `${'g'.repeat(58)}-`;
      },
      expected: 'metadata.generateName: Invalid value',
    },
    {
      name: 'a namespace that is not a DNS-1123 label',
      mutate: (workflow) => {
        workflow.metadata.namespace = 'team.shop';
      },
      expected: 'metadata.namespace: Invalid value: "team.shop"',
    },
    {
      name: 'an annotation key with an invalid name part',
      mutate: (workflow) => {
        workflow.metadata.annotations['kube-sentinel.io/-target'] = 'x';
      },
      expected: 'metadata.annotations: Invalid value: "kube-sentinel.io/-target"',
    },
    {
      name: 'an int-or-string quantity that is an object',
      mutate: (workflow) => {
        workflow.spec.templates[0].container.resources = { limits: { cpu: { cores: 1 } } };
      },
      expected: 'spec.templates[0].container.resources.limits.cpu: must be integer or string',
    },
  ];

  for (const { name, mutate, expected } of mutations) {
    it(`rejects ${name}`, () => {
      const workflow = validWorkflow();
      mutate(workflow);
      const problems = validateArgoObject(workflow);
      assert.ok(
        problems.some((problem) => problem.startsWith(expected)),
        `expected a problem starting with ${JSON.stringify(expected)}, got ${JSON.stringify(problems)}`,
      );
    });
  }

  it('rejects a kind it does not know', () => {
    assert.deepEqual(validateArgoObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } }), [
      'kind: Unsupported value: "Pod": must be one of: Workflow, WorkflowTemplate, ClusterWorkflowTemplate',
    ]);
  });

  it('rejects an apiVersion other than argoproj.io/v1alpha1', () => {
    const workflow = validWorkflow();
    workflow.apiVersion = 'argoproj.io/v1';
    assert.deepEqual(validateArgoObject(workflow), [
      'apiVersion: Unsupported value: "argoproj.io/v1": must be argoproj.io/v1alpha1',
    ]);
  });

  it('validates a WorkflowTemplate against its own schema', () => {
    const template: Json = { ...validWorkflow(), kind: 'WorkflowTemplate' };
    template.spec.bogus = true;
    assert.deepEqual(validateArgoObject(template), ['spec.bogus: unknown field']);
  });
});

describe('DNS-1123 names', () => {
  const cases: { name: string; label: boolean; subdomain: boolean }[] = [
    { name: 'checkout', label: true, subdomain: true },
    { name: 'kube-sentinel-restart-0a1b', label: true, subdomain: true },
    { name: 'team.shop', label: false, subdomain: true },
    { name: 'a'.repeat(63), label: true, subdomain: true },
    { name: 'a'.repeat(64), label: false, subdomain: true },
    { name: 'a'.repeat(254), label: false, subdomain: false },
    { name: 'Bad_Name', label: false, subdomain: false },
    { name: '-leading', label: false, subdomain: false },
    { name: 'trailing-', label: false, subdomain: false },
    { name: '', label: false, subdomain: false },
  ];
  for (const { name, label, subdomain } of cases) {
    const shown = name.length > 20 ? `${name.slice(0, 3)}… (${name.length} characters)` : JSON.stringify(name);
    it(`${shown} is ${label ? '' : 'not '}a label and ${subdomain ? '' : 'not '}a subdomain`, () => {
      assert.equal(isDns1123Label(name), label);
      assert.equal(isDns1123Subdomain(name), subdomain);
    });
  }
});

describe('labelProblems', () => {
  it('accepts prefixed keys, empty values and values with dots and underscores', () => {
    assert.deepEqual(
      labelProblems({ 'app.kubernetes.io/managed-by': 'kube-sentinel', 'kube-sentinel.io/rule': '', tier: 'web_1.a' }),
      [],
    );
  });

  const bad: { name: string; labels: unknown; expected: string }[] = [
    { name: 'a key with two slashes', labels: { 'a/b/c': 'x' }, expected: 'metadata.labels: Invalid value: "a/b/c"' },
    {
      name: 'a key whose name part is 64 characters',
      labels: { [`p.io/${'k'.repeat(64)}`]: 'x' },
      expected: 'must be no more than 63 characters',
    },
    { name: 'a key with an uppercase prefix', labels: { 'Example.com/x': 'x' }, expected: 'prefix part' },
    {
      name: 'a value with a space',
      labels: { rule: 'oom killed' },
      expected: 'metadata.labels: Invalid value: "oom killed"',
    },
    { name: 'a value ending in a dash', labels: { rule: 'oom-' }, expected: 'metadata.labels: Invalid value: "oom-"' },
    {
      name: 'a value that is not a string',
      labels: { replicas: 5 },
      expected: 'metadata.labels["replicas"]: must be string',
    },
  ];
  for (const { name, labels, expected } of bad) {
    it(`reports ${name}`, () => {
      const problems = labelProblems(labels);
      assert.ok(
        problems.some((problem) => problem.includes(expected)),
        JSON.stringify(problems),
      );
    });
  }
});
