import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { INLINE_SCRIPTS } from '../../src/pipeline/inline-actions.js';
import { validateArgoObject } from '../support/argo-schema.js';
import {
  argumentProblems,
  BUILT_IN_TEMPLATES,
  type BuiltInTemplate,
  containersIn,
  type FakeAnswer,
  type FakeCall,
  hardeningProblems,
  imageProblems,
  inputParameterProblems,
  isPinnedImage,
  type Json,
  jqProblem,
  loadWorkflowTemplate,
  outputReferenceProblems,
  runScript,
  type ScriptRun,
  scriptOf,
  scriptsIn,
  scriptVariableProblems,
  shellExpansions,
  shellSyntaxProblems,
  shellTemplatingProblems,
  templateReferenceProblems,
  unquotedParameterExpansions,
  WORKFLOW_TEMPLATES_DIR,
  workflowParameterProblems,
  workflowTemplateFiles,
} from '../support/workflowtemplates.js';

const NAMESPACE = 'shop';
const POD = 'checkout-7d9f8b6c5-x2x9k';
const TARGET = { NAMESPACE, POD };

/** What templates/workflowtemplates.yaml does to each file. */
function asTheChartRendersIt(workflowTemplate: Json): Json {
  const rendered = structuredClone(workflowTemplate);
  rendered.metadata.namespace = 'argo';
  rendered.spec.serviceAccountName = 'argo-workflow';
  if (rendered.spec.artifactGC) rendered.spec.artifactGC.serviceAccountName = 'argo-workflow';
  return rendered;
}

function withNamespace(workflowTemplate: Json): Json {
  const copy = structuredClone(workflowTemplate);
  copy.metadata.namespace = 'argo';
  return copy;
}

const SPEC_TTL = { secondsAfterSuccess: 600, secondsAfterFailure: 86400, secondsAfterCompletion: 3600 };
const ALERT_PARAMETERS = ['alertname', 'priority', 'rule'];
const WITH_EXIT_HANDLER: BuiltInTemplate[] = [
  'diagnose-pod',
  'restart-with-backup',
  'scale-and-monitor',
  'diagnose-and-recover',
];

function metadataProblems(name: string, workflowTemplate: Json): string[] {
  const problems: string[] = [];
  if (workflowTemplate.apiVersion !== 'argoproj.io/v1alpha1')
    problems.push(`apiVersion ${workflowTemplate.apiVersion}`);
  if (workflowTemplate.kind !== 'WorkflowTemplate') problems.push(`kind ${workflowTemplate.kind}`);
  const metadata = workflowTemplate.metadata ?? {};
  if (metadata.name !== name) problems.push(`metadata.name ${metadata.name} is not the file name ${name}`);
  if (metadata.labels?.['app.kubernetes.io/managed-by'] !== 'kube-sentinel')
    problems.push('no label app.kubernetes.io/managed-by: kube-sentinel');
  if (metadata.labels?.['app.kubernetes.io/part-of'] !== 'kube-sentinel')
    problems.push('no label app.kubernetes.io/part-of: kube-sentinel');
  const description = metadata.annotations?.['workflows.argoproj.io/description'];
  if (typeof description !== 'string' || description.trim() === '')
    problems.push('no workflows.argoproj.io/description annotation');
  if (metadata.namespace !== undefined) problems.push('metadata.namespace is set; the chart sets it');
  if (workflowTemplate.spec?.serviceAccountName !== undefined)
    problems.push('spec.serviceAccountName is set; the chart sets it');
  if (workflowTemplate.spec?.artifactGC?.serviceAccountName !== undefined)
    problems.push('spec.artifactGC.serviceAccountName is set; the chart sets it');
  return problems;
}

function workflowArgumentProblems(workflowTemplate: Json): string[] {
  const parameters: Json[] = workflowTemplate.spec?.arguments?.parameters ?? [];
  const byName = new Map(parameters.map((parameter) => [parameter.name, parameter]));
  const problems: string[] = [];
  for (const name of ['namespace', 'pod']) {
    if (!byName.has(name)) problems.push(`does not declare ${name}`);
    // Without a default, Argo refuses a submission that lacks the target instead of running on nothing.
    else if (byName.get(name).value !== undefined) problems.push(`${name} has a default value`);
  }
  for (const name of ['container', ...ALERT_PARAMETERS]) {
    if (byName.get(name)?.value !== '') problems.push(`${name} is not declared with the default ""`);
  }
  for (const parameter of parameters) {
    if (parameter.value !== undefined && typeof parameter.value !== 'string')
      problems.push(`${parameter.name}: value is not a string`);
  }
  return problems;
}

function lifecycleProblems(workflowTemplate: Json): string[] {
  const spec = workflowTemplate.spec ?? {};
  const problems: string[] = [];
  if (!isDeepEqual(spec.ttlStrategy, SPEC_TTL)) {
    problems.push(`ttlStrategy ${JSON.stringify(spec.ttlStrategy)} is not ${JSON.stringify(SPEC_TTL)}`);
  }
  if (!['OnPodCompletion', 'OnWorkflowSuccess'].includes(spec.podGC?.strategy))
    problems.push(`podGC.strategy ${spec.podGC?.strategy}`);
  if (
    !(
      Number.isInteger(spec.activeDeadlineSeconds) &&
      spec.activeDeadlineSeconds > 0 &&
      spec.activeDeadlineSeconds <= 3600
    )
  ) {
    problems.push(`activeDeadlineSeconds ${spec.activeDeadlineSeconds} is not between 1 and 3600`);
  }
  return problems;
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

function scriptProblems(workflowTemplate: Json, check: (source: string) => string[]): string[] {
  return scriptsIn(workflowTemplate).flatMap((site) =>
    check(site.source).map((problem) => `template ${site.template}: ${problem}`),
  );
}

// The scripts run with the machine's jq, as they do with the image's.
before(() => {
  const missing = jqProblem();
  if (missing) assert.fail(missing);
});

describe('built-in WorkflowTemplates', () => {
  it('are exactly the seven files SPEC §8 names', () => {
    assert.deepEqual(workflowTemplateFiles(), [...BUILT_IN_TEMPLATES].map((name) => `${name}.yaml`).sort());
  });

  it('hold one YAML document each', () => {
    for (const file of workflowTemplateFiles()) {
      const documents = parseAllDocuments(readFileSync(join(WORKFLOW_TEMPLATES_DIR, file), 'utf8'));
      assert.equal(Array.isArray(documents) ? documents.length : 0, 1, file);
    }
  });
});

/** What SPEC §8 asks of particular templates, beyond what all of them share. */
const SHAPE: Partial<Record<BuiltInTemplate, (workflowTemplate: Json) => void>> = {
  'diagnose-pod': (workflowTemplate) => {
    it('is a DAG: describe, logs and events in parallel, then a summary that depends on all three', () => {
      const dag = workflowTemplate.spec.templates.find(
        (template: Json) => template.name === workflowTemplate.spec.entrypoint,
      ).dag;
      const tasks = new Map<string, Json>(dag.tasks.map((task: Json) => [task.name, task]));
      for (const name of ['describe', 'logs', 'events']) {
        assert.equal(
          tasks.get(name)?.depends ?? tasks.get(name)?.dependencies,
          undefined,
          `${name} waits for something`,
        );
      }
      assert.equal(tasks.get('summary')?.depends, 'describe && logs && events');
    });
  },
  'restart-with-backup': (workflowTemplate) => {
    it('backs up, then evicts, then verifies, one step after the other', () => {
      const steps = workflowTemplate.spec.templates.find(
        (template: Json) => template.name === workflowTemplate.spec.entrypoint,
      ).steps;
      assert.deepEqual(
        steps.map((group: Json[]) => group.map((step) => step.template)),
        [['backup-logs'], ['evict-pod'], ['verify-replacement']],
      );
    });

    it('declares the logs as an unarchived output artifact in the default artifact repository', () => {
      const backup = workflowTemplate.spec.templates.find((template: Json) => template.name === 'backup-logs');
      assert.deepEqual(backup.outputs.artifacts, [
        { name: 'logs', path: '/tmp/backup/logs.txt', archive: { none: {} } },
      ]);
    });

    it('garbage-collects its artifacts when the workflow is deleted, even if the collection fails', () => {
      assert.deepEqual(workflowTemplate.spec.artifactGC, {
        strategy: 'OnWorkflowDeletion',
        forceFinalizerRemoval: true,
      });
    });
  },
  'scale-and-monitor': (workflowTemplate) => {
    const parameters = new Map<string, Json>(
      workflowTemplate.spec.arguments.parameters.map((parameter: Json) => [parameter.name, parameter.value]),
    );

    it('takes replicas (default "2") and deployment (default "": from the owner chain)', () => {
      assert.equal(parameters.get('replicas'), '2');
      assert.equal(parameters.get('deployment'), '');
    });

    it('resolves, scales, then monitors, one step after the other', () => {
      const steps = workflowTemplate.spec.templates.find(
        (template: Json) => template.name === workflowTemplate.spec.entrypoint,
      ).steps;
      assert.deepEqual(
        steps.map((group: Json[]) => group.map((step) => step.name)),
        [['resolve'], ['scale'], ['monitor']],
      );
    });
  },
  'diagnose-and-recover': (workflowTemplate) => {
    const templates = new Map<string, Json>(
      workflowTemplate.spec.templates.map((template: Json) => [template.name, template]),
    );

    it('publishes the verdict as an output parameter read from /tmp/verdict', () => {
      assert.deepEqual(
        templates.get('diagnose').outputs.parameters.find((parameter: Json) => parameter.name === 'verdict'),
        { name: 'verdict', valueFrom: { path: '/tmp/verdict' } },
      );
    });

    it('restarts when the verdict is unhealthy and escalates when it is critical, after the diagnosis', () => {
      const steps = templates.get(workflowTemplate.spec.entrypoint).steps;
      assert.deepEqual(
        steps[0].map((step: Json) => step.name),
        ['diagnose'],
      );
      assert.deepEqual(
        steps[1].map((step: Json) => [step.name, step.template, step.when]),
        [
          ['restart', 'restart-pod', '{{steps.diagnose.outputs.parameters.verdict}} == unhealthy'],
          ['escalate', 'notify', '{{steps.diagnose.outputs.parameters.verdict}} == critical'],
        ],
      );
    });

    it('reads the webhook URL from an optional Secret', () => {
      const webhook = templates.get('notify').script.env.find((variable: Json) => variable.name === 'WEBHOOK_URL');
      assert.deepEqual(webhook, {
        name: 'WEBHOOK_URL',
        valueFrom: { secretKeyRef: { name: 'kube-sentinel-escalation', key: 'webhook-url', optional: true } },
      });
    });
  },
};

for (const name of BUILT_IN_TEMPLATES) {
  describe(name, () => {
    const workflowTemplate = loadWorkflowTemplate(name);
    const checks: { it: string; problems: () => string[] }[] = [
      {
        it: 'is a WorkflowTemplate named after its file, labelled managed-by kube-sentinel, described, with namespace and service account left to the chart',
        problems: () => metadataProblems(name, workflowTemplate),
      },
      {
        it: 'validates strictly against the Argo CRD with metadata.namespace added',
        problems: () => validateArgoObject(withNamespace(workflowTemplate)),
      },
      {
        it: 'validates strictly against the Argo CRD as the chart renders it',
        problems: () => validateArgoObject(asTheChartRendersIt(workflowTemplate)),
      },
      {
        it: 'declares namespace and pod without defaults, and container, alertname, priority and rule defaulting to ""',
        problems: () => workflowArgumentProblems(workflowTemplate),
      },
      {
        it: 'uses only the {{inputs.parameters}} each template declares, and every one it declares',
        problems: () => inputParameterProblems(workflowTemplate),
      },
      {
        it: 'uses only the {{workflow.parameters}} that spec.arguments declares',
        problems: () => workflowParameterProblems(workflowTemplate),
      },
      {
        it: 'keeps every {{...}} out of the command, args and source of every container',
        problems: () => shellTemplatingProblems(workflowTemplate),
      },
      {
        it: 'has its entrypoint, its onExit and every template its steps and tasks call',
        problems: () => templateReferenceProblems(workflowTemplate),
      },
      {
        it: 'passes each step and task exactly the parameters its template takes',
        problems: () => argumentProblems(workflowTemplate),
      },
      {
        it: 'reads only outputs that an earlier step declares',
        problems: () => outputReferenceProblems(workflowTemplate),
      },
      { it: 'pins every image to a version', problems: () => imageProblems(workflowTemplate) },
      {
        it: 'gives every container requests, limits, the restricted security context and HOME on an emptyDir /tmp',
        problems: () => hardeningProblems(workflowTemplate),
      },
      {
        it: 'sets the TTL strategy of SPEC §5, a pod GC strategy and a deadline',
        problems: () => lifecycleProblems(workflowTemplate),
      },
      { it: 'has scripts that sh -n accepts', problems: () => scriptProblems(workflowTemplate, shellSyntaxProblems) },
      {
        it: 'expands its parameters only inside double quotes',
        problems: () =>
          scriptProblems(workflowTemplate, (source) =>
            unquotedParameterExpansions(source).map(
              (expansion) => `line ${expansion.line}: $${expansion.name} outside double quotes`,
            ),
          ),
      },
      {
        it: 'reads in each script only the variables its env sets, and sets none it does not read',
        problems: () => scriptsIn(workflowTemplate).flatMap(scriptVariableProblems),
      },
      {
        it: 'starts every script with set -eu',
        problems: () =>
          scriptProblems(workflowTemplate, (source) =>
            source.startsWith('set -eu\n') ? [] : ['does not start with set -eu'],
          ),
      },
    ];
    for (const check of checks) {
      it(check.it, () => {
        assert.deepEqual(check.problems(), []);
      });
    }

    SHAPE[name]?.(workflowTemplate);

    if (WITH_EXIT_HANDLER.includes(name)) {
      it('has an onExit handler that reports the workflow status, failures and target through env', () => {
        const exit = workflowTemplate.spec.templates.find(
          (template: Json) => template.name === workflowTemplate.spec.onExit,
        );
        assert.ok(exit?.script, `onExit ${workflowTemplate.spec.onExit} is not a script template`);
        const env = new Map<string, string>(exit.script.env.map((variable: Json) => [variable.name, variable.value]));
        assert.equal(env.get('WORKFLOW_STATUS'), '{{workflow.status}}');
        assert.equal(env.get('WORKFLOW_FAILURES'), '{{workflow.failures}}');
        assert.equal(env.get('NAMESPACE'), '{{workflow.parameters.namespace}}');
        assert.equal(env.get('POD'), '{{workflow.parameters.pod}}');
        assert.equal(env.get('ALERTNAME'), '{{workflow.parameters.alertname}}');
      });

      it('prints each failed node when the workflow failed, whether Argo quotes workflow.failures or not', () => {
        const failures = JSON.stringify([
          { displayName: 'verify', templateName: 'verify-replacement', message: 'Error (exit code 1)' },
        ]);
        for (const value of [failures, JSON.stringify(failures)]) {
          const run = runScript(scriptOf(workflowTemplate, workflowTemplate.spec.onExit), {
            env: {
              ...TARGET,
              WORKFLOW_NAME: 'kube-sentinel-x-1',
              WORKFLOW_STATUS: 'Failed',
              WORKFLOW_DURATION: '12.5',
              WORKFLOW_FAILURES: value,
              CONTAINER: 'app',
              DEPLOYMENT: '',
              REPLICAS: '2',
              ALERTNAME: 'KubePodCrashLooping',
              PRIORITY: 'P2',
              RULE: 'crashloop',
            },
          });
          assert.equal(run.status, 0, run.stderr);
          assert.match(run.stdout, /Failed after 12\.5s/);
          assert.match(run.stdout, /failed: verify \(verify-replacement\): Error \(exit code 1\)/);
          assert.match(run.stdout, /KubePodCrashLooping \(rule crashloop, priority P2\)/);
        }
      });
    } else {
      it('needs no onExit handler: its one step is its own summary', () => {
        assert.equal(workflowTemplate.spec.onExit, undefined);
        assert.equal(workflowTemplate.spec.templates.filter((template: Json) => template.script).length, 1);
      });
    }

    const clusterScripts = scriptsIn(workflowTemplate).filter((site) => site.source.includes('kubectl'));
    const validEnv = {
      NAMESPACE,
      POD,
      CONTAINER: '',
      OWNER_UID: 'rs-uid',
      DEPLOYMENT: 'checkout',
      READY_TIMEOUT: '60',
      REPLICAS: '2',
      MAX_REPLICAS: '20',
      ROLLOUT_TIMEOUT: '60',
    };

    it('stops every script that calls kubectl before the call when the namespace is empty', () => {
      assert.ok(clusterScripts.length > 0);
      for (const site of clusterScripts) {
        const run = runScript(site.source, { env: { ...validEnv, NAMESPACE: '' } });
        assert.notEqual(run.status, 0, site.template);
        assert.deepEqual(run.callsTo('kubectl'), [], site.template);
        assert.match(run.stderr, /the alert has no namespace/, site.template);
      }
    });

    it('stops every script that requires a pod before calling kubectl when the pod is empty', () => {
      for (const site of clusterScripts.filter((candidate) => candidate.source.includes('${POD:?'))) {
        const run = runScript(site.source, { env: { ...validEnv, POD: '' } });
        assert.notEqual(run.status, 0, site.template);
        assert.deepEqual(run.callsTo('kubectl'), [], site.template);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// SPEC §11: no built-in remediation deletes a pod (a restart evicts, which a PodDisruptionBudget
// can refuse) or scales a workload below its current replicas.

/** Lines of a script that delete pods with kubectl, in any spelling it takes: pod, pods, po, pod/NAME, a raw pods path. */
function podDeletions(source: string): string[] {
  return source
    .replaceAll('\\\n', ' ')
    .split('\n')
    .filter((line) => /\bkubectl\b[^\n;|&]*\sdelete\s[^\n;|&]*\b(?:pods?|po)\b/.test(line));
}

/** Lines of a script that scale with kubectl without making it conditional on the replicas it read. */
function unguardedScales(source: string): string[] {
  return source
    .replaceAll('\\\n', ' ')
    .split('\n')
    .map((line) => line.replace(/"(?:[^"\\]|\\.)*"/g, '""'))
    .filter((line) => /\bkubectl\b[^\n;|&]*\sscale\s/.test(line) && !line.includes('--current-replicas='));
}

describe('disruptions', () => {
  const scripts = [
    ...BUILT_IN_TEMPLATES.flatMap((name) =>
      scriptsIn(loadWorkflowTemplate(name)).map((site) => ({
        where: `${name}: ${site.template}`,
        source: site.source,
      })),
    ),
    ...Object.entries(INLINE_SCRIPTS).map(([action, source]) => ({ where: `inline ${action}`, source })),
  ];

  it('no built-in template or inline action deletes a pod', () => {
    assert.ok(scripts.length > 20, 'every script is scanned');
    assert.deepEqual(
      scripts.flatMap(({ where, source }) => podDeletions(source).map((line) => `${where}: ${line.trim()}`)),
      [],
    );
  });

  it('every kubectl scale in them is conditional on the current replicas', () => {
    assert.deepEqual(
      scripts.flatMap(({ where, source }) => unguardedScales(source).map((line) => `${where}: ${line.trim()}`)),
      [],
    );
  });

  it('the scan finds a pod deletion however it is spelt, and nothing else', () => {
    for (const deletion of [
      'kubectl delete pod "$POD" -n "$NAMESPACE" --wait=false',
      '  kubectl -n "$NAMESPACE" delete pods -l app=checkout',
      'kubectl delete po/checkout-0',
      'kubectl delete --raw "/api/v1/namespaces/$NAMESPACE/pods/$POD"',
      'kubectl \\\n  delete pod "$POD"',
    ]) {
      assert.equal(podDeletions(`set -eu\n${deletion}\n`).length, 1, deletion);
    }
    for (const harmless of [
      'kubectl create --raw "/api/v1/namespaces/$NAMESPACE/pods/$POD/eviction" -f -',
      'kubectl get pods -n "$NAMESPACE" -o json',
      'echo "deleting pod $POD"',
    ]) {
      assert.deepEqual(podDeletions(harmless), [], harmless);
    }
  });

  it('the scan finds a scale that does not name the current replicas, and not a printed command', () => {
    assert.equal(unguardedScales('kubectl scale deployment "$DEPLOYMENT" --replicas="$REPLICAS"').length, 1);
    assert.deepEqual(unguardedScales('echo "to undo: kubectl scale deployment $DEPLOYMENT --replicas=$current"'), []);
  });
});

// ---------------------------------------------------------------------------------------------
// The checks themselves: each must find what it is there to find.

describe('the template checks', () => {
  const base = loadWorkflowTemplate('restart-with-backup');
  const mutate = (change: (copy: Json) => void): Json => {
    const copy = structuredClone(base);
    change(copy);
    return copy;
  };
  const script = (copy: Json, name: string): Json =>
    copy.spec.templates.find((template: Json) => template.name === name).script;

  const cases: {
    name: string;
    check: (workflowTemplate: Json) => string[];
    change: (copy: Json) => void;
    finds: RegExp;
  }[] = [
    {
      name: 'a parameter pasted into a script source',
      check: shellTemplatingProblems,
      change: (copy) => {
        script(copy, 'evict-pod').source += 'echo {{inputs.parameters.pod}}\n';
      },
      finds: /script\.source: contains \{\{/,
    },
    {
      name: 'an expression in the args of a sidecar',
      check: shellTemplatingProblems,
      change: (copy) => {
        copy.spec.templates[1].sidecars = [
          { name: 'x', image: 'docker.io/busybox:1.37.0', args: ['{{=inputs.parameters.pod}}'] },
        ];
      },
      finds: /sidecars\[0\]\.args\[0\]: contains \{\{/,
    },
    {
      name: 'a step output in the command of a containerSet container',
      check: shellTemplatingProblems,
      change: (copy) => {
        copy.spec.templates.push({
          name: 'set',
          containerSet: {
            containers: [
              { name: 'a', image: 'docker.io/busybox:1.37.0', command: ['echo', '{{steps.x.outputs.result}}'] },
            ],
          },
        });
      },
      finds: /containerSet\.containers\[0\]\.command\[1\]: contains \{\{/,
    },
    {
      name: 'an undeclared input parameter',
      check: inputParameterProblems,
      change: (copy) => {
        script(copy, 'evict-pod').env.push({ name: 'X', value: '{{inputs.parameters.nope}}' });
      },
      finds: /uses inputs\.parameters\.nope, which it does not declare/,
    },
    {
      name: 'a declared input nobody uses',
      check: inputParameterProblems,
      change: (copy) => {
        copy.spec.templates
          .find((template: Json) => template.name === 'evict-pod')
          .inputs.parameters.push({ name: 'unused' });
      },
      finds: /declares input unused but never uses it/,
    },
    {
      name: 'an undeclared workflow parameter',
      check: workflowParameterProblems,
      change: (copy) => {
        copy.spec.templates[0].steps[0][0].arguments.parameters[0].value = '{{workflow.parameters.nope}}';
      },
      finds: /workflow\.parameters\.nope/,
    },
    {
      name: 'an entrypoint that does not exist',
      check: templateReferenceProblems,
      change: (copy) => {
        copy.spec.entrypoint = 'main';
      },
      finds: /spec\.entrypoint "main" is not one of the templates/,
    },
    {
      name: 'an onExit that does not exist',
      check: templateReferenceProblems,
      change: (copy) => {
        copy.spec.onExit = 'bye';
      },
      finds: /spec\.onExit "bye"/,
    },
    {
      name: 'a step calling a missing template',
      check: templateReferenceProblems,
      change: (copy) => {
        copy.spec.templates[0].steps[1][0].template = 'evict-pods';
      },
      finds: /calls template "evict-pods", which does not exist/,
    },
    {
      name: 'a step that does not pass a required input',
      check: argumentProblems,
      change: (copy) => {
        copy.spec.templates[0].steps[1][0].arguments.parameters.pop();
      },
      finds: /does not pass input ready-timeout of evict-pod/,
    },
    {
      name: 'a step output read before the step runs',
      check: outputReferenceProblems,
      change: (copy) => {
        copy.spec.templates[0].steps[0][0].arguments.parameters.push({
          name: 'x',
          value: '{{steps.evict.outputs.parameters.owner-uid}}',
        });
      },
      finds: /evict does not run before it/,
    },
    {
      name: 'a step output its template does not declare',
      check: outputReferenceProblems,
      change: (copy) => {
        copy.spec.templates[0].steps[2][0].arguments.parameters[3].value = '{{steps.evict.outputs.parameters.owner}}';
      },
      finds: /which template evict-pod does not declare/,
    },
    {
      name: 'an image on :latest',
      check: imageProblems,
      change: (copy) => {
        script(copy, 'backup-logs').image = 'docker.io/alpine/k8s:latest';
      },
      finds: /not pinned/,
    },
    {
      name: 'a container without limits',
      check: hardeningProblems,
      change: (copy) => {
        copy.spec.templates[1].script = {
          ...script(copy, 'backup-logs'),
          resources: { requests: { cpu: '1', memory: '1Gi' } },
        };
      },
      finds: /no resources\.limits\.cpu/,
    },
    {
      name: 'a container that may run as root',
      check: hardeningProblems,
      change: (copy) => {
        copy.spec.templates[1].script = { ...script(copy, 'backup-logs'), securityContext: { runAsNonRoot: false } };
      },
      finds: /securityContext\.runAsNonRoot is false/,
    },
    {
      name: 'a read-only container without a writable /tmp',
      check: hardeningProblems,
      change: (copy) => {
        copy.spec.templates[1].script = { ...script(copy, 'backup-logs'), volumeMounts: [] };
      },
      finds: /nothing is mounted at \/tmp/,
    },
  ];
  for (const { name, check, change, finds } of cases) {
    it(`finds ${name}`, () => {
      assert.deepEqual(check(base), [], 'the unchanged template must pass');
      const problems = check(mutate(change));
      assert.ok(
        problems.some((problem) => finds.test(problem)),
        `expected ${finds} in ${JSON.stringify(problems)}`,
      );
    });
  }

  it('finds containers wherever they are', () => {
    const sites = containersIn({
      spec: {
        templates: [
          { container: { image: 'a' }, initContainers: [{ image: 'b' }], sidecars: [{ image: 'c' }] },
          { script: { image: 'd' } },
          { containerSet: { containers: [{ image: 'e' }] } },
        ],
      },
    });
    assert.deepEqual(sites.map((site) => site.container.image).sort(), ['a', 'b', 'c', 'd', 'e']);
  });

  const images: [string, boolean][] = [
    ['docker.io/alpine/k8s:1.33.1', true],
    ['localhost:5000/tools/kubectl:v1.33.1', true],
    [`alpine@sha256:${'a'.repeat(64)}`, true],
    ['alpine', false],
    ['alpine:latest', false],
    ['localhost:5000/alpine', false],
    ['alpine@sha256:short', false],
  ];
  for (const [image, pinned] of images) {
    it(`counts ${image} as ${pinned ? 'pinned' : 'not pinned'}`, () => {
      assert.equal(isPinnedImage(image), pinned);
    });
  }

  const expansions: { script: string; seen: string[]; unquoted: string[] }[] = [
    { script: 'echo $POD', seen: ['POD'], unquoted: ['POD'] },
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a template literal.
    { script: 'echo ${POD}', seen: ['POD'], unquoted: ['POD'] },
    { script: 'echo "$POD"', seen: ['POD'], unquoted: [] },
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell text, not a template literal.
    { script: 'echo "${CONTAINER:+, container $CONTAINER}"', seen: ['CONTAINER', 'CONTAINER'], unquoted: [] },
    { script: "echo '$POD'", seen: [], unquoted: [] },
    { script: '# echo $POD\necho "$NAMESPACE"', seen: ['NAMESPACE'], unquoted: [] },
    { script: 'x=$(kubectl get pod $POD)', seen: ['POD'], unquoted: ['POD'] },
    { script: 'echo "$(kubectl get pod $POD)"', seen: ['POD'], unquoted: ['POD'] },
    { script: 'echo "$(kubectl get pod "$POD")"', seen: ['POD'], unquoted: [] },
    { script: 'n=$(($REPLICAS + 1))', seen: ['REPLICAS'], unquoted: ['REPLICAS'] },
    { script: 'echo "it\'s $POD"', seen: ['POD'], unquoted: [] },
    { script: 'echo \\$POD', seen: [], unquoted: [] },
    { script: 'for name in $services; do echo "$name"; done', seen: ['services', 'name'], unquoted: [] },
  ];
  for (const { script: source, seen, unquoted } of expansions) {
    it(`sees ${JSON.stringify(unquoted)} of ${JSON.stringify(seen)} unquoted in ${JSON.stringify(source)}`, () => {
      assert.deepEqual(
        shellExpansions(source).map((expansion) => expansion.name),
        seen,
      );
      assert.deepEqual(
        unquotedParameterExpansions(source).map((expansion) => expansion.name),
        unquoted,
      );
    });
  }

  it('finds a script that reads a variable nobody sets, or sets one nobody reads', () => {
    const problems = scriptVariableProblems({
      path: 'x',
      template: 't',
      source: 'set -eu\necho "$NAMESPCE"\n',
      env: ['HOME', 'NAMESPACE'],
    });
    assert.deepEqual(problems, [
      'template t: the script reads $NAMESPCE, which its env does not set',
      'template t: env NAMESPACE is set but the script never reads it',
    ]);
  });

  it('finds a script that sh cannot parse', () => {
    assert.notDeepEqual(shellSyntaxProblems('if true; then echo\n'), []);
    assert.deepEqual(shellSyntaxProblems('if true; then echo; fi\n'), []);
  });
});

// ---------------------------------------------------------------------------------------------
// The scripts, run by sh against fake kubectl, curl, nc and getent.

interface PodOptions {
  name?: string;
  uid?: string;
  owner?: Json | null;
  ready?: boolean;
  deleting?: boolean;
  statuses?: Json[];
  containers?: Json[];
  labels?: Record<string, string>;
  ip?: string;
  imagePullSecrets?: string[];
  reason?: string;
}

const REPLICASET_OWNER = {
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  name: 'checkout-7d9f8b6c5',
  uid: 'rs-uid',
  controller: true,
  blockOwnerDeletion: true,
};

function running(name: string, restartCount = 0): Json {
  return { name, ready: true, restartCount, state: { running: { startedAt: '2025-01-01T00:00:00Z' } }, lastState: {} };
}

function pod(options: PodOptions = {}): Json {
  const owner = options.owner === undefined ? REPLICASET_OWNER : options.owner;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: options.name ?? POD,
      namespace: NAMESPACE,
      uid: options.uid ?? 'pod-uid-1',
      labels: options.labels ?? { app: 'checkout', 'pod-template-hash': '7d9f8b6c5' },
      ownerReferences: owner ? [owner] : undefined,
      deletionTimestamp: options.deleting ? '2025-01-01T00:05:00Z' : undefined,
    },
    spec: {
      containers: options.containers ?? [
        {
          name: 'app',
          image: 'registry.example.com/shop/checkout:1.4.2',
          ports: [{ containerPort: 8080 }],
          resources: { requests: { memory: '256Mi' }, limits: { memory: '512Mi' } },
        },
      ],
      imagePullSecrets: options.imagePullSecrets?.map((name) => ({ name })),
      nodeName: 'node-1',
    },
    status: {
      phase: 'Running',
      podIP: options.ip ?? '10.0.0.7',
      reason: options.reason,
      conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }],
      containerStatuses: options.statuses ?? [running('app')],
    },
  };
}

const json = (value: unknown): string => JSON.stringify(value);
const getPod = (value: Json): FakeAnswer => ({ when: ['get', 'pod', POD, '-o', 'json'], stdout: json(value) });
const NOT_FOUND: FakeAnswer = {
  when: ['get', 'pod', POD],
  exit: 1,
  stderr: `Error from server (NotFound): pods "${POD}" not found\n`,
};

const EVICTION_CALL = ['create', '--raw', `/api/v1/namespaces/${NAMESPACE}/pods/${POD}/eviction`, '-f', '-'];
const EVICTION_BODY = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: POD, namespace: NAMESPACE } };
const EVICTED: FakeAnswer = {
  when: ['create', '--raw'],
  stdout: '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}\n',
};
/** What kubectl prints when the API server answers 429 for a PodDisruptionBudget. */
const PDB_REFUSAL =
  "Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget.";
const BUDGETS: FakeAnswer = {
  when: ['get', 'poddisruptionbudgets'],
  stdout:
    'NAME       MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE\ncheckout   2               N/A               0                     3d\n',
};

const evictionsIn = (run: ScriptRun): FakeCall[] =>
  run.calls.filter((call) => call.program === 'kubectl' && call.args[0] === 'create');

/**
 * SPEC §11: a restart evicts the pod (so that a PodDisruptionBudget can refuse it) and fails with
 * the API server's message when it is refused. `cluster` answers the script's other calls.
 */
function itRestartsByEviction(script: string, env: Record<string, string>, cluster: FakeAnswer[]): void {
  it('evicts the pod with a policy/v1 Eviction of it through the Eviction API, and deletes nothing', () => {
    const run = runScript(script, { env, answers: { kubectl: [EVICTED, ...cluster] } });
    assert.equal(run.status, 0, run.stderr);
    const evictions = evictionsIn(run);
    assert.deepEqual(
      evictions.map((call) => call.args),
      [EVICTION_CALL],
    );
    assert.deepEqual(JSON.parse(evictions[0]?.stdin ?? ''), EVICTION_BODY);
    assert.deepEqual(
      run.callsTo('kubectl').filter((args) => args.includes('delete')),
      [],
    );
    assert.equal(run.terminationMessage, '');
  });

  it("fails with the API server's message when a PodDisruptionBudget refuses, and lists the namespace's budgets", () => {
    const refused: FakeAnswer = { when: ['create', '--raw'], exit: 1, stderr: `${PDB_REFUSAL}\n` };
    const run = runScript(script, { env, answers: { kubectl: [refused, BUDGETS, ...cluster] } });
    assert.equal(run.status, 1);
    const message = `eviction of pod ${NAMESPACE}/${POD} failed: ${PDB_REFUSAL}`;
    assert.ok(run.stderr.includes(message), run.stderr);
    assert.match(run.stderr, /ALLOWED DISRUPTIONS/);
    // Argo makes the container's termination message the failed step's message.
    assert.equal(run.terminationMessage, `${message}\n`);
    // Nothing after the budgets: no waiting for a replacement of a pod that was not evicted.
    assert.deepEqual(run.callsTo('kubectl').at(-1), ['get', 'poddisruptionbudgets', '-n', NAMESPACE]);
  });

  it('carries on when the pod is already gone, since its owner replaces it all the same', () => {
    const gone: FakeAnswer = {
      when: ['create', '--raw'],
      exit: 1,
      stderr: `Error from server (NotFound): pods "${POD}" not found\n`,
    };
    const run = runScript(script, { env, answers: { kubectl: [gone, ...cluster] } });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`pod ${NAMESPACE}/${POD} is already gone: nothing to evict`));
    assert.equal(run.terminationMessage, '');
  });

  for (const [name, change] of [
    ['a pod name that climbs the request path', { POD: '../../../apis/apps/v1/namespaces/shop/deployments/checkout' }],
    ['a namespace with a slash', { NAMESPACE: 'shop/pods' }],
  ] as const) {
    it(`refuses ${name} before touching the cluster`, () => {
      const run = runScript(script, { env: { ...env, ...change }, answers: { kubectl: [EVICTED, ...cluster] } });
      assert.equal(run.status, 2);
      assert.match(run.stderr, /refusing to evict: (namespace|pod) must be a DNS-1123/);
      assert.deepEqual(run.callsTo('kubectl'), []);
    });
  }
}

describe('scripts, run against fake kubectl', () => {
  describe('diagnose-pod', () => {
    const workflowTemplate = loadWorkflowTemplate('diagnose-pod');

    it('describes the pod', () => {
      const run = runScript(scriptOf(workflowTemplate, 'describe-pod'), {
        env: TARGET,
        answers: { kubectl: [{ when: ['describe'], stdout: 'Name: x\n' }] },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(run.callsTo('kubectl'), [['describe', 'pod', POD, '-n', NAMESPACE]]);
    });

    it('collects current and previous logs of the alert container, and succeeds without previous ones', () => {
      const run = runScript(scriptOf(workflowTemplate, 'collect-logs'), {
        env: { ...TARGET, CONTAINER: 'app' },
        answers: {
          kubectl: [
            { when: ['logs', '--previous'], exit: 1, stderr: 'previous terminated container "app" not found\n' },
            { when: ['logs'], stdout: 'listening on :8080\n' },
          ],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(run.callsTo('kubectl'), [
        ['logs', POD, '-n', NAMESPACE, '-c', 'app', '--tail=500', '--timestamps=true'],
        ['logs', POD, '-n', NAMESPACE, '-c', 'app', '--tail=500', '--timestamps=true', '--previous'],
      ]);
      assert.match(run.stdout, /listening on :8080[\s\S]*no previous logs/);
    });

    it('collects every container when the alert names none', () => {
      const run = runScript(scriptOf(workflowTemplate, 'collect-logs'), {
        env: { ...TARGET, CONTAINER: '' },
        answers: { kubectl: [{ when: ['logs'] }] },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(run.callsTo('kubectl')[0], [
        'logs',
        POD,
        '-n',
        NAMESPACE,
        '--all-containers=true',
        '--prefix=true',
        '--tail=500',
        '--timestamps=true',
      ]);
    });

    it("gathers the pod's events, which outlive it", () => {
      const run = runScript(scriptOf(workflowTemplate, 'gather-events'), {
        env: TARGET,
        answers: { kubectl: [{ when: ['events'] }] },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(run.callsTo('kubectl'), [
        [
          'get',
          'events',
          '-n',
          NAMESPACE,
          '--field-selector',
          `involvedObject.kind=Pod,involvedObject.name=${POD}`,
          '--sort-by=.metadata.creationTimestamp',
        ],
      ]);
    });

    it('summarizes container states, restarts, the last termination and warnings by reason', () => {
      const crashing = {
        name: 'app',
        ready: false,
        restartCount: 7,
        state: { waiting: { reason: 'CrashLoopBackOff' } },
        lastState: { terminated: { reason: 'Error', exitCode: 1, finishedAt: '2025-01-01T00:04:00Z' } },
      };
      const events = {
        items: [
          { reason: 'BackOff', count: 5, message: 'Back-off restarting failed container' },
          { reason: 'BackOff', count: 2, message: 'Back-off restarting failed container app' },
          { reason: 'Unhealthy', message: 'Readiness probe failed:\nconnection refused' },
        ],
      };
      const run = runScript(scriptOf(workflowTemplate, 'summarize'), {
        env: TARGET,
        answers: {
          kubectl: [getPod(pod({ ready: false, statuses: [crashing] })), { when: ['events'], stdout: json(events) }],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /phase: Running on node node-1/);
      assert.match(run.stdout, /ready: false/);
      assert.match(
        run.stdout,
        /container app: ready=false restarts=7 state=waiting \(CrashLoopBackOff\) last-termination=Error exit=1 at 2025-01-01T00:04:00Z/,
      );
      assert.match(run.stdout, /BackOff x7: Back-off restarting failed container app/);
      assert.match(run.stdout, /Unhealthy x1: Readiness probe failed: connection refused/);
    });

    it('still succeeds when the pod is gone by the time of the summary', () => {
      const run = runScript(scriptOf(workflowTemplate, 'summarize'), {
        env: TARGET,
        answers: { kubectl: [NOT_FOUND] },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /no longer exists/);
    });
  });

  describe('restart-with-backup', () => {
    const workflowTemplate = loadWorkflowTemplate('restart-with-backup');

    it('writes current and previous logs to the artifact path, and notes missing previous ones', () => {
      const run = runScript(scriptOf(workflowTemplate, 'backup-logs'), {
        env: { ...TARGET, CONTAINER: 'app' },
        answers: {
          kubectl: [
            { when: ['get', 'pod', POD, '-o', 'name'], stdout: `pod/${POD}\n` },
            { when: ['logs', '--previous'], exit: 1 },
            { when: ['logs'], stdout: '2025-01-01T00:00:00Z database connection failed\n' },
          ],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      const backup = run.file('/tmp/backup/logs.txt') ?? '';
      assert.match(
        backup,
        /current container instance\n2025-01-01T00:00:00Z database connection failed\n# --- previous container instance\n# \(no previous logs/,
      );
      assert.deepEqual(run.callsTo('kubectl')[1], [
        'logs',
        POD,
        '-n',
        NAMESPACE,
        '-c',
        'app',
        '--timestamps=true',
        '--limit-bytes=104857600',
      ]);
    });

    it('fails before reading logs when the pod is gone', () => {
      const run = runScript(scriptOf(workflowTemplate, 'backup-logs'), {
        env: { ...TARGET, CONTAINER: '' },
        answers: { kubectl: [NOT_FOUND] },
      });
      assert.notEqual(run.status, 0);
      assert.deepEqual(
        run.callsTo('kubectl').filter((args) => args[0] === 'logs'),
        [],
      );
    });

    const sibling = pod({ name: 'checkout-7d9f8b6c5-aaaaa', uid: 'pod-uid-2' });
    const stranger = pod({
      name: 'cart-5f5f5f5f5-bbbbb',
      uid: 'pod-uid-9',
      owner: { ...REPLICASET_OWNER, name: 'cart-5f5f5f5f5', uid: 'other-rs' },
    });
    const replicaSet = { spec: { selector: { matchLabels: { app: 'checkout', 'pod-template-hash': '7d9f8b6c5' } } } };

    it("records the owner, the owner's current pods and its selector, then evicts only this pod", () => {
      const run = runScript(scriptOf(workflowTemplate, 'evict-pod'), {
        env: { ...TARGET, READY_TIMEOUT: '300' },
        answers: {
          kubectl: [
            getPod(pod()),
            { when: ['get', 'replicasets.apps', 'checkout-7d9f8b6c5'], stdout: json(replicaSet) },
            { when: ['get', 'pods'], stdout: json({ items: [sibling, pod(), stranger] }) },
            EVICTED,
          ],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.file('/tmp/out/owner-uid'), 'rs-uid');
      assert.equal(run.file('/tmp/out/known-uids'), 'pod-uid-1 pod-uid-2');
      assert.equal(run.file('/tmp/out/selector'), 'app=checkout,pod-template-hash=7d9f8b6c5');
      const calls = run.callsTo('kubectl');
      assert.deepEqual(calls[2], [
        'get',
        'pods',
        '-n',
        NAMESPACE,
        '-l',
        'app=checkout,pod-template-hash=7d9f8b6c5',
        '-o',
        'json',
      ]);
      assert.deepEqual(calls.at(-1), EVICTION_CALL);
    });

    it("searches the whole namespace when it may not read the owner's selector", () => {
      const run = runScript(scriptOf(workflowTemplate, 'evict-pod'), {
        env: { ...TARGET, READY_TIMEOUT: '300' },
        answers: {
          kubectl: [
            getPod(pod()),
            { when: ['get', 'replicasets.apps'], exit: 1, stderr: 'Error from server (Forbidden)\n' },
            { when: ['get', 'pods'], stdout: json({ items: [pod()] }) },
            EVICTED,
          ],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.file('/tmp/out/selector'), '');
      assert.ok(
        run.callsTo('kubectl').some((args) => json(args) === json(['get', 'pods', '-n', NAMESPACE, '-o', 'json'])),
      );
    });

    it('does not evict when it cannot list the owner pods, which it needs to recognise the replacement', () => {
      const run = runScript(scriptOf(workflowTemplate, 'evict-pod'), {
        env: { ...TARGET, READY_TIMEOUT: '300' },
        answers: {
          kubectl: [
            getPod(pod()),
            { when: ['get', 'replicasets.apps'], stdout: json(replicaSet) },
            { when: ['get', 'pods'], exit: 1 },
            EVICTED,
          ],
        },
      });
      assert.notEqual(run.status, 0);
      assert.deepEqual(evictionsIn(run), []);
    });

    itRestartsByEviction(scriptOf(workflowTemplate, 'evict-pod'), { ...TARGET, READY_TIMEOUT: '300' }, [
      getPod(pod()),
      { when: ['get', 'replicasets.apps'], stdout: json(replicaSet) },
      { when: ['get', 'pods'], stdout: json({ items: [sibling, pod()] }) },
    ]);

    const unrestartable: { name: string; owner: Json | null; says: RegExp }[] = [
      { name: 'a pod no controller owns', owner: null, says: /no controller owns it/ },
      {
        name: 'the mirror of a static pod',
        owner: { apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: 'node-uid', controller: true },
        says: /static pod/,
      },
    ];
    for (const { name, owner, says } of unrestartable) {
      it(`refuses to evict ${name}`, () => {
        const run = runScript(scriptOf(workflowTemplate, 'evict-pod'), {
          env: { ...TARGET, READY_TIMEOUT: '300' },
          answers: { kubectl: [getPod(pod({ owner })), EVICTED] },
        });
        assert.equal(run.status, 1);
        assert.match(run.stderr, says);
        assert.deepEqual(evictionsIn(run), []);
      });
    }

    for (const timeout of ['', 'abc', '-5', '010', '100000', '5; touch pwned', '3.5']) {
      it(`refuses ready-timeout ${JSON.stringify(timeout)} before touching the cluster`, () => {
        const run = runScript(scriptOf(workflowTemplate, 'evict-pod'), {
          env: { ...TARGET, READY_TIMEOUT: timeout },
          answers: { kubectl: [{ when: [] }] },
        });
        assert.equal(run.status, 2);
        assert.deepEqual(run.callsTo('kubectl'), []);
      });
    }

    const verifyEnv = {
      ...TARGET,
      READY_TIMEOUT: '0',
      OWNER_UID: 'rs-uid',
      KNOWN_UIDS: 'pod-uid-1 pod-uid-2',
      SELECTOR: 'app=checkout',
    };

    it('succeeds once a new pod of the owner is Ready, ignoring the pods that existed before', () => {
      const replacement = pod({ name: 'checkout-7d9f8b6c5-zzzzz', uid: 'pod-uid-3' });
      const run = runScript(scriptOf(workflowTemplate, 'verify-replacement'), {
        env: verifyEnv,
        answers: {
          kubectl: [
            { when: ['get', 'pods'], stdout: json({ items: [pod({ deleting: true }), sibling, replacement] }) },
          ],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /replacement pod shop\/checkout-7d9f8b6c5-zzzzz is Ready/);
      assert.deepEqual(run.callsTo('kubectl'), [['get', 'pods', '-n', NAMESPACE, '-l', 'app=checkout', '-o', 'json']]);
    });

    it('fails at the deadline when only old pods, unready new ones or pods of other owners are Ready', () => {
      const unready = pod({ name: 'checkout-7d9f8b6c5-zzzzz', uid: 'pod-uid-3', ready: false });
      const run = runScript(scriptOf(workflowTemplate, 'verify-replacement'), {
        env: verifyEnv,
        answers: { kubectl: [{ when: ['get', 'pods'], stdout: json({ items: [sibling, unready, stranger] }) }] },
      });
      assert.equal(run.status, 1);
      assert.match(run.stderr, /no Ready replacement of shop\/checkout-7d9f8b6c5-x2x9k within 0s/);
    });

    it('looks again after a pause until the replacement is Ready', () => {
      const replacement = (ready: boolean) => pod({ name: 'checkout-7d9f8b6c5-zzzzz', uid: 'pod-uid-3', ready });
      const run = runScript(scriptOf(workflowTemplate, 'verify-replacement'), {
        env: { ...verifyEnv, READY_TIMEOUT: '300' },
        answers: {
          kubectl: [
            { when: ['get', 'pods'], stdout: json({ items: [sibling] }), once: true },
            { when: ['get', 'pods'], stdout: json({ items: [sibling, replacement(false)] }), once: true },
            { when: ['get', 'pods'], stdout: json({ items: [sibling, replacement(true)] }) },
          ],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.callsTo('kubectl').length, 3);
      assert.deepEqual(run.callsTo('sleep'), [['5'], ['5']]);
    });
  });

  describe('scale-and-monitor', () => {
    const workflowTemplate = loadWorkflowTemplate('scale-and-monitor');
    const ownerOf = (kind: string, answer: string): FakeAnswer => ({
      when: [
        'get',
        kind,
        '-o',
        'jsonpath={range .metadata.ownerReferences[?(@.controller==true)]}{.kind}/{.name}{end}',
      ],
      stdout: answer,
    });

    it('follows pod -> ReplicaSet -> Deployment when no deployment is given', () => {
      const run = runScript(scriptOf(workflowTemplate, 'resolve-deployment'), {
        env: { ...TARGET, DEPLOYMENT: '' },
        answers: {
          kubectl: [ownerOf('pod', 'ReplicaSet/checkout-7d9f8b6c5'), ownerOf('replicaset', 'Deployment/checkout')],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.file('/tmp/out/deployment'), 'checkout');
      assert.deepEqual(
        run.callsTo('kubectl').map((args) => args.slice(0, 5)),
        [
          ['get', 'pod', POD, '-n', NAMESPACE],
          ['get', 'replicaset', 'checkout-7d9f8b6c5', '-n', NAMESPACE],
        ],
      );
    });

    it('uses the deployment it is given, after checking that it exists', () => {
      const run = runScript(scriptOf(workflowTemplate, 'resolve-deployment'), {
        env: { ...TARGET, DEPLOYMENT: 'checkout-v2' },
        answers: { kubectl: [{ when: ['get', 'deployment', 'checkout-v2'], stdout: 'deployment.apps/checkout-v2\n' }] },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.file('/tmp/out/deployment'), 'checkout-v2');
      assert.equal(run.callsTo('kubectl').length, 1);
    });

    const unresolvable: { name: string; answers: FakeAnswer[]; says: RegExp }[] = [
      {
        name: 'a pod of a StatefulSet',
        answers: [ownerOf('pod', 'StatefulSet/db')],
        says: /owned by 'StatefulSet\/db', not a ReplicaSet/,
      },
      { name: 'a bare pod', answers: [ownerOf('pod', '')], says: /owned by 'nothing'/ },
      {
        name: 'a ReplicaSet no Deployment owns',
        answers: [ownerOf('pod', 'ReplicaSet/legacy'), ownerOf('replicaset', '')],
        says: /not a Deployment/,
      },
    ];
    for (const { name, answers, says } of unresolvable) {
      it(`fails for ${name}, and names the deployment parameter`, () => {
        const run = runScript(scriptOf(workflowTemplate, 'resolve-deployment'), {
          env: { ...TARGET, DEPLOYMENT: '' },
          answers: { kubectl: answers },
        });
        assert.equal(run.status, 1);
        assert.match(run.stderr, says);
        assert.equal(run.file('/tmp/out/deployment'), undefined);
      });
    }

    it('fails without calling kubectl when it has neither a deployment nor a pod', () => {
      const run = runScript(scriptOf(workflowTemplate, 'resolve-deployment'), {
        env: { NAMESPACE, POD: '', DEPLOYMENT: '' },
      });
      assert.equal(run.status, 1);
      assert.deepEqual(run.callsTo('kubectl'), []);
    });

    const scaleEnv = { NAMESPACE, DEPLOYMENT: 'checkout', REPLICAS: '3', MAX_REPLICAS: '20', ROLLOUT_TIMEOUT: '300' };
    const currentReplicas = (replicas: string): FakeAnswer => ({
      when: ['get', 'deployment', 'checkout', '-o', 'jsonpath={.spec.replicas}'],
      stdout: replicas,
    });
    const scaleAnswers: FakeAnswer[] = [currentReplicas('1'), { when: ['scale'] }];

    it('scales the deployment up, only from the replicas it read, and prints how to undo it', () => {
      const run = runScript(scriptOf(workflowTemplate, 'scale-deployment'), {
        env: scaleEnv,
        answers: { kubectl: scaleAnswers },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(run.callsTo('kubectl').at(-1), [
        'scale',
        'deployment',
        'checkout',
        '-n',
        NAMESPACE,
        '--current-replicas=1',
        '--replicas=3',
      ]);
      assert.match(run.stdout, /from 1 to 3 replicas/);
      assert.match(run.stdout, /to undo: kubectl scale deployment checkout -n shop --replicas=1/);
    });

    it('leaves a deployment that already has the replicas asked for as it is', () => {
      const run = runScript(scriptOf(workflowTemplate, 'scale-deployment'), {
        env: scaleEnv,
        answers: { kubectl: [currentReplicas('3'), { when: ['scale'] }] },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(run.callsTo('kubectl').at(-1)?.slice(-2), ['--current-replicas=3', '--replicas=3']);
    });

    for (const [replicas, current] of [
      ['2', '3'],
      ['0', '1'],
    ] as const) {
      it(`refuses to scale below the current replicas (${replicas} of ${current}), and scales nothing`, () => {
        const run = runScript(scriptOf(workflowTemplate, 'scale-deployment'), {
          env: { ...scaleEnv, REPLICAS: replicas },
          answers: { kubectl: [currentReplicas(current), { when: ['scale'] }] },
        });
        assert.equal(run.status, 2);
        assert.match(
          run.stderr,
          new RegExp(
            `refusing to scale deployment shop/checkout down from ${current} to ${replicas} replicas: scale-and-monitor never scales below the current replicas`,
          ),
        );
        assert.deepEqual(
          run.callsTo('kubectl').filter((args) => args[0] === 'scale'),
          [],
        );
      });
    }

    it('fails, scaling nothing, when it cannot tell the current replicas', () => {
      const run = runScript(scriptOf(workflowTemplate, 'scale-deployment'), {
        env: scaleEnv,
        answers: { kubectl: [currentReplicas(''), { when: ['scale'] }] },
      });
      assert.equal(run.status, 1);
      assert.match(run.stderr, /cannot tell the current replicas of deployment shop\/checkout/);
      assert.deepEqual(
        run.callsTo('kubectl').filter((args) => args[0] === 'scale'),
        [],
      );
    });

    const invalid: [string, Record<string, string>][] = [
      ['replicas that is not a number', { REPLICAS: 'abc' }],
      ['negative replicas', { REPLICAS: '-1' }],
      ['empty replicas', { REPLICAS: '' }],
      ['fractional replicas', { REPLICAS: '1.5' }],
      ['replicas with a leading zero', { REPLICAS: '010' }],
      ['replicas too long for test(1)', { REPLICAS: '99999999999999999999', MAX_REPLICAS: '99999' }],
      ['replicas with shell in it', { REPLICAS: '3; touch pwned' }],
      ['replicas above max-replicas', { REPLICAS: '21' }],
      ['an invalid max-replicas', { MAX_REPLICAS: 'lots' }],
      ['an invalid rollout-timeout', { ROLLOUT_TIMEOUT: '5m' }],
    ];
    for (const [name, change] of invalid) {
      it(`refuses ${name} before touching the cluster`, () => {
        const run = runScript(scriptOf(workflowTemplate, 'scale-deployment'), {
          env: { ...scaleEnv, ...change },
          answers: { kubectl: scaleAnswers },
        });
        assert.equal(run.status, 2, run.stderr);
        assert.deepEqual(run.callsTo('kubectl'), []);
      });
    }

    const rollout = (deployment: Json): FakeAnswer[] => [
      { when: ['rollout', 'status'] },
      { when: ['get', 'deployment', 'checkout', '-o', 'json'], stdout: json(deployment) },
    ];
    const readiness: { name: string; deployment: Json; status: number }[] = [
      {
        name: 'every replica is ready',
        deployment: { spec: { replicas: 3 }, status: { readyReplicas: 3 } },
        status: 0,
      },
      { name: 'it was scaled to zero', deployment: { spec: { replicas: 0 }, status: {} }, status: 0 },
      {
        name: 'a replica is not ready after the rollout',
        deployment: { spec: { replicas: 3 }, status: { readyReplicas: 2 } },
        status: 1,
      },
    ];
    for (const { name, deployment, status } of readiness) {
      it(`${status === 0 ? 'succeeds' : 'fails'} after the rollout when ${name}`, () => {
        const run = runScript(scriptOf(workflowTemplate, 'wait-for-rollout'), {
          env: { NAMESPACE, DEPLOYMENT: 'checkout', ROLLOUT_TIMEOUT: '120' },
          answers: { kubectl: rollout(deployment) },
        });
        assert.equal(run.status, status, run.stderr);
        assert.deepEqual(run.callsTo('kubectl')[0], [
          'rollout',
          'status',
          'deployment',
          'checkout',
          '-n',
          NAMESPACE,
          '--timeout=120s',
        ]);
      });
    }

    it('fails when the rollout does not finish in time', () => {
      const run = runScript(scriptOf(workflowTemplate, 'wait-for-rollout'), {
        env: { NAMESPACE, DEPLOYMENT: 'checkout', ROLLOUT_TIMEOUT: '120' },
        answers: { kubectl: [{ when: ['rollout'], exit: 1, stderr: 'error: timed out waiting for the condition\n' }] },
      });
      assert.equal(run.status, 1);
      assert.equal(run.callsTo('kubectl').length, 1);
    });
  });

  describe('diagnose-memory', () => {
    const script = scriptOf(loadWorkflowTemplate('diagnose-memory'), 'memory-report');
    const oomKilled = {
      name: 'app',
      ready: false,
      restartCount: 4,
      state: { waiting: { reason: 'CrashLoopBackOff' } },
      lastState: { terminated: { reason: 'OOMKilled', exitCode: 137, finishedAt: '2025-01-01T00:04:00Z' } },
    };
    const twoContainers = [
      { name: 'app', image: 'x:1', resources: { requests: { memory: '256Mi' }, limits: { memory: '512Mi' } } },
      { name: 'sidecar', image: 'y:1', resources: {} },
    ];
    const env = { ...TARGET, CONTAINER: '', USAGE_THRESHOLD_PERCENT: '90', ALERTNAME: 'KubeContainerOOMKilled' };
    const events: FakeAnswer = { when: ['get', 'events'], stdout: 'No resources found\n' };

    it('reports limits against usage, the OOMKill and a container without a limit', () => {
      const run = runScript(script, {
        env,
        answers: {
          kubectl: [
            getPod(pod({ containers: twoContainers, statuses: [oomKilled, running('sidecar')] })),
            { when: ['top'], stdout: `${POD} app 3m 500Mi\n${POD} sidecar 1m 20Mi\n` },
            events,
          ],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.match(
        run.stdout,
        /container app:\n {2}memory request 256Mi, limit 512Mi\n {2}usage now 500Mi \(97% of the limit\)\n {2}restarts 4, state waiting \(CrashLoopBackOff\)\n {2}last termination: OOMKilled \(exit 137/,
      );
      assert.match(run.stdout, /=== findings\nOOMKilled: container app used more than its limit 512Mi/);
      assert.match(run.stdout, /container sidecar has no memory limit/);
      assert.match(run.stdout, /container app is at 97% of its memory limit now/);
    });

    it('still answers "was it OOMKilled" without metrics-server', () => {
      const run = runScript(script, {
        env,
        answers: {
          kubectl: [
            getPod(pod({ containers: twoContainers, statuses: [oomKilled, running('sidecar')] })),
            { when: ['top'], exit: 1, stderr: 'error: Metrics API not available\n' },
            events,
          ],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /no current usage: kubectl top failed/);
      assert.match(run.stdout, /usage now unknown/);
      assert.match(run.stdout, /OOMKilled: container app/);
    });

    it('says so when nothing memory-related stands out, and looks only at the alert container', () => {
      const run = runScript(script, {
        env: { ...env, CONTAINER: 'app' },
        answers: {
          kubectl: [
            getPod(pod({ containers: twoContainers, statuses: [running('app'), running('sidecar')] })),
            { when: ['top'], stdout: `${POD} app 3m 100Mi\n` },
            events,
          ],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /nothing memory-related stands out/);
      assert.doesNotMatch(run.stdout, /sidecar/);
    });

    it('refuses an invalid threshold before touching the cluster', () => {
      const run = runScript(script, { env: { ...env, USAGE_THRESHOLD_PERCENT: '90%' } });
      assert.equal(run.status, 2);
      assert.deepEqual(run.callsTo('kubectl'), []);
    });
  });

  describe('network-diagnostics', () => {
    const script = scriptOf(loadWorkflowTemplate('network-diagnostics'), 'network-report');
    const env = { ...TARGET, CONTAINER: '', TARGET_HOST: '', TARGET_PORT: '', ALERTNAME: '' };
    const services = {
      items: [
        {
          metadata: { name: 'checkout' },
          spec: {
            selector: { app: 'checkout' },
            clusterIP: '10.96.0.10',
            ports: [
              { port: 80, protocol: 'TCP' },
              { port: 53, protocol: 'UDP' },
            ],
          },
        },
        {
          metadata: { name: 'cart' },
          spec: { selector: { app: 'cart' }, clusterIP: '10.96.0.11', ports: [{ port: 80 }] },
        },
        { metadata: { name: 'external' }, spec: { type: 'ExternalName', externalName: 'example.com' } },
      ],
    };
    const slices = (addresses: string[], ready = true) => ({
      items: [{ endpoints: addresses.map((address) => ({ addresses: [address], conditions: { ready } })) }],
    });
    const resolves: FakeAnswer = { when: ['hosts'], stdout: '10.96.0.1       kubernetes.default.svc.cluster.local\n' };

    it('checks DNS, the Services that select the pod, their endpoints and TCP ports, and the pod itself', () => {
      const run = runScript(script, {
        env,
        answers: {
          kubectl: [
            getPod(pod()),
            { when: ['get', 'services'], stdout: json(services) },
            {
              when: ['get', 'endpointslices.discovery.k8s.io', 'kubernetes.io/service-name=checkout'],
              stdout: json(slices(['10.0.0.7'])),
            },
            { when: ['get', 'networkpolicies.networking.k8s.io'], stdout: '' },
          ],
          getent: [resolves],
          nc: [{ when: [] }],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(run.callsTo('getent'), [
        ['hosts', 'kubernetes.default.svc'],
        ['hosts', 'checkout.shop.svc'],
      ]);
      assert.deepEqual(run.callsTo('nc'), [
        ['-z', '-w', '3', 'checkout.shop.svc', '80'],
        ['-z', '-w', '3', '10.0.0.7', '8080'],
      ]);
      assert.doesNotMatch(run.stdout, /cart/);
      assert.match(run.stdout, /=== findings: 0 problem\(s\)/);
    });

    it('counts an unready pod missing from the endpoints, closed ports and an unresolvable target', () => {
      const run = runScript(script, {
        env: { ...env, TARGET_HOST: 'db.shop.svc', TARGET_PORT: '5432' },
        answers: {
          kubectl: [
            getPod(pod({ ready: false })),
            { when: ['get', 'services'], stdout: json(services) },
            { when: ['get', 'endpointslices.discovery.k8s.io'], stdout: json(slices(['10.0.0.8'])) },
            {
              when: ['get', 'networkpolicies.networking.k8s.io'],
              stdout: 'networkpolicy.networking.k8s.io/default-deny\n',
            },
          ],
          getent: [{ when: ['db.shop.svc'], exit: 2 }, resolves],
          nc: [{ when: ['10.0.0.7'], exit: 1 }, { when: ['db.shop.svc'], exit: 1 }, { when: [] }],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      const problems = run.stdout.split('\n').filter((line) => line.startsWith('PROBLEM: '));
      assert.deepEqual(problems, [
        'PROBLEM: the pod is not Ready, so no Service sends it traffic',
        'PROBLEM: the pod is not among the ready endpoints of service checkout',
        'PROBLEM: TCP 10.0.0.7:8080 (pod checkout-7d9f8b6c5-x2x9k): no connection within 3s',
        'PROBLEM: DNS: db.shop.svc does not resolve',
        'PROBLEM: TCP db.shop.svc:5432 (target): no connection within 3s',
      ]);
      assert.match(run.stdout, /networkpolicy\.networking\.k8s\.io\/default-deny/);
      assert.match(run.stdout, /=== findings: 5 problem\(s\)/);
    });

    it("reports what its permissions don't let it see without counting it against the pod", () => {
      const run = runScript(script, {
        env,
        answers: {
          kubectl: [
            getPod(pod()),
            { when: ['get', 'services'], exit: 1, stderr: 'Forbidden\n' },
            { when: ['get', 'networkpolicies.networking.k8s.io'], exit: 1 },
          ],
          getent: [resolves],
          nc: [{ when: [] }],
        },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /skipped: cannot list Services in shop: the workflow role needs services get\/list/);
      assert.match(run.stdout, /skipped: cannot list NetworkPolicies/);
      assert.match(run.stdout, /=== findings: 0 problem\(s\)/);
    });

    for (const [name, change] of [
      ['a port that is not a number', { TARGET_PORT: 'http' }],
      ['a port above 65535', { TARGET_PORT: '70000' }],
      ['port 0', { TARGET_PORT: '0' }],
      ['a host with shell in it', { TARGET_HOST: 'db;reboot' }],
    ] as const) {
      it(`refuses a target with ${name} before touching the cluster`, () => {
        const run = runScript(script, { env: { ...env, TARGET_HOST: 'db', ...change } });
        assert.equal(run.status, 2);
        assert.deepEqual(run.callsTo('kubectl'), []);
      });
    }
  });

  describe('check-image-registry', () => {
    const script = scriptOf(loadWorkflowTemplate('check-image-registry'), 'registry-report');
    const password = 'hunter2-secret';
    const dockerConfig = Buffer.from(
      json({
        auths: {
          'https://registry.example.com': {
            username: 'ci',
            password,
            auth: Buffer.from(`ci:${password}`).toString('base64'),
          },
        },
      }),
    ).toString('base64');
    const containers = [
      { name: 'app', image: 'registry.example.com/shop/checkout:1.4.2' },
      { name: 'proxy', image: 'envoyproxy/envoy' },
    ];
    const statuses = [
      {
        name: 'app',
        ready: false,
        restartCount: 0,
        state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } },
      },
      running('proxy'),
    ];
    const events = {
      items: [
        {
          metadata: { creationTimestamp: '2025-01-01T00:01:00Z' },
          type: 'Warning',
          reason: 'Failed',
          message: 'Failed to pull image: 401 Unauthorized',
        },
        {
          metadata: { creationTimestamp: '2025-01-01T00:00:00Z' },
          type: 'Normal',
          reason: 'Scheduled',
          message: 'Successfully assigned',
        },
      ],
    };

    const run = () =>
      runScript(script, {
        env: { ...TARGET, CONTAINER: '', ALERTNAME: '' },
        answers: {
          kubectl: [
            getPod(pod({ containers, statuses, imagePullSecrets: ['regcred', 'gone'] })),
            {
              when: ['get', 'secret', 'regcred'],
              stdout: json({ type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': dockerConfig } }),
            },
            {
              when: ['get', 'secret', 'gone'],
              exit: 1,
              stderr: 'Error from server (NotFound): secrets "gone" not found\n',
            },
            { when: ['get', 'events'], stdout: json(events) },
          ],
          curl: [
            { when: ['https://registry.example.com/v2/'], stdout: '401' },
            {
              when: ['https://registry-1.docker.io/v2/'],
              stdout: '000',
              exit: 6,
              stderr: 'curl: (6) Could not resolve host\n',
            },
          ],
        },
      });

    it('finds the stuck container, the missing pull secret and the unreachable registry', () => {
      const result = run();
      assert.equal(result.status, 0, result.stderr);
      const problems = result.stdout.split('\n').filter((line) => line.startsWith('PROBLEM: '));
      assert.deepEqual(problems, [
        'PROBLEM: container cannot get its image: app:ImagePullBackOff',
        'PROBLEM: pull secret gone does not exist in shop: the kubelet pulls anonymously',
        'PROBLEM: registry docker.io is unreachable (DNS, TCP or TLS failed) at https://registry-1.docker.io/v2/',
      ]);
      assert.match(result.stdout, /ok: pull secret regcred has credentials for: registry\.example\.com/);
      assert.match(
        result.stdout,
        /ok: registry registry\.example\.com answers on https:\/\/registry\.example\.com\/v2\/ and asks for credentials/,
      );
      assert.match(result.stdout, /ok: a pull secret has credentials for registry\.example\.com/);
      assert.match(result.stdout, /note: envoyproxy\/envoy has no tag, so it means :latest/);
      assert.match(result.stdout, /Warning Failed: Failed to pull image: 401 Unauthorized/);
      assert.doesNotMatch(result.stdout, /Scheduled/);
      assert.match(result.stdout, /=== findings: 3 problem\(s\)/);
    });

    it('never prints the credentials of a pull secret', () => {
      const result = run();
      const output = result.stdout + result.stderr;
      assert.ok(!output.includes(password), 'the password was printed');
      assert.ok(!output.includes(Buffer.from(`ci:${password}`).toString('base64')), 'the auth string was printed');
      assert.ok(!output.includes(dockerConfig), 'the docker config was printed');
    });

    it('asks each registry once, with a bounded wait', () => {
      const calls = run().callsTo('curl');
      assert.equal(calls.length, 2);
      for (const args of calls) {
        assert.ok(args.includes('--connect-timeout') && args.includes('--max-time'), json(args));
      }
    });
  });

  describe('diagnose-and-recover', () => {
    const workflowTemplate = loadWorkflowTemplate('diagnose-and-recover');
    const diagnose = scriptOf(workflowTemplate, 'diagnose');
    const diagnoseEnv = {
      ...TARGET,
      CONTAINER: 'app',
      RESTART_THRESHOLD: '5',
      ERROR_PATTERN: 'database connection failed|connection pool exhausted',
      LOG_WINDOW: '5m',
    };
    const quietLogs: FakeAnswer = { when: ['logs'], stdout: 'GET /healthz 200\n' };
    const crashLooping = (restartCount: number) => ({
      name: 'app',
      ready: false,
      restartCount,
      state: { waiting: { reason: 'CrashLoopBackOff' } },
      lastState: { terminated: { reason: 'Error', exitCode: 1 } },
    });
    const verdicts: { name: string; answers: FakeAnswer[]; verdict: string; reason: RegExp }[] = [
      {
        name: 'a ready pod with quiet logs',
        answers: [getPod(pod()), quietLogs],
        verdict: 'healthy',
        reason: /ready, every container running/,
      },
      {
        name: 'a crash-looping pod below the restart threshold',
        answers: [getPod(pod({ ready: false, statuses: [crashLooping(2)] })), quietLogs],
        verdict: 'unhealthy',
        reason: /not ready/,
      },
      {
        name: 'a ready pod that still logs the error',
        answers: [
          getPod(pod()),
          { when: ['logs'], stdout: 'ERROR Database connection failed\nok\nWARN connection pool exhausted\n' },
        ],
        verdict: 'unhealthy',
        reason: /2 matching error line\(s\) in the last 5m/,
      },
      {
        name: 'a pod restarted past the threshold',
        answers: [getPod(pod({ ready: false, statuses: [crashLooping(7)] })), quietLogs],
        verdict: 'critical',
        reason: /restarted 7 times already/,
      },
      {
        name: 'a pod that cannot pull its image',
        answers: [
          getPod(
            pod({
              ready: false,
              statuses: [
                { name: 'app', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff' } } },
              ],
            }),
          ),
          quietLogs,
        ],
        verdict: 'critical',
        reason: /ImagePullBackOff: a restart does not fix/,
      },
      {
        name: 'a pod no controller owns',
        answers: [getPod(pod({ owner: null, ready: false, statuses: [crashLooping(1)] })), quietLogs],
        verdict: 'critical',
        reason: /no controller owns the pod/,
      },
      {
        name: 'a pod that no longer exists',
        answers: [NOT_FOUND],
        verdict: 'critical',
        reason: /does not exist any more/,
      },
    ];
    for (const { name, answers, verdict, reason } of verdicts) {
      it(`calls ${name} ${verdict}`, () => {
        const run = runScript(diagnose, { env: diagnoseEnv, answers: { kubectl: answers } });
        assert.equal(run.status, 0, run.stderr);
        assert.equal(run.file('/tmp/verdict'), verdict);
        assert.match(run.file('/tmp/reason') ?? '', reason);
      });
    }

    it('searches only the recent logs of the alert container', () => {
      const run = runScript(diagnose, { env: diagnoseEnv, answers: { kubectl: [getPod(pod()), quietLogs] } });
      assert.deepEqual(run.callsTo('kubectl')[1], ['logs', POD, '-n', NAMESPACE, '-c', 'app', '--since=5m']);
    });

    it('gives no verdict, and fails, when it may not read the pod', () => {
      const run = runScript(diagnose, {
        env: diagnoseEnv,
        answers: {
          kubectl: [{ when: ['get', 'pod'], exit: 1, stderr: 'Error from server (Forbidden): pods is forbidden\n' }],
        },
      });
      assert.equal(run.status, 1);
      assert.equal(run.file('/tmp/verdict'), undefined);
      assert.match(run.stderr, /Forbidden/);
    });

    for (const [name, change] of [
      ['restart-threshold', { RESTART_THRESHOLD: 'five' }],
      ['log-window', { LOG_WINDOW: '5 minutes' }],
      ['log-window', { LOG_WINDOW: '$(reboot)' }],
    ] as const) {
      it(`refuses an invalid ${name} ${JSON.stringify(Object.values(change)[0])} before touching the cluster`, () => {
        const run = runScript(diagnose, { env: { ...diagnoseEnv, ...change } });
        assert.equal(run.status, 2);
        assert.deepEqual(run.callsTo('kubectl'), []);
      });
    }

    const restart = scriptOf(workflowTemplate, 'restart-pod');

    const replacement = pod({ name: 'checkout-7d9f8b6c5-zzzzz', uid: 'pod-uid-3' });
    const ownerPods: FakeAnswer[] = [
      getPod(pod()),
      { when: ['get', 'pods'], stdout: json({ items: [pod()] }), once: true },
      { when: ['get', 'pods'], stdout: json({ items: [pod({ deleting: true }), replacement] }) },
    ];

    it('restarts by evicting the pod and waits for a new Ready pod of the same owner', () => {
      const run = runScript(restart, {
        env: { ...TARGET, READY_TIMEOUT: '0' },
        answers: { kubectl: [EVICTED, ...ownerPods] },
      });
      assert.equal(run.status, 0, run.stderr);
      const calls = run.callsTo('kubectl');
      assert.deepEqual(calls[2], EVICTION_CALL);
      assert.deepEqual(calls[3]?.slice(0, 2), ['get', 'pods']);
      assert.match(run.stdout, /checkout-7d9f8b6c5-zzzzz is Ready/);
    });

    it('does not evict a pod that no controller would recreate', () => {
      const run = runScript(restart, {
        env: { ...TARGET, READY_TIMEOUT: '60' },
        answers: { kubectl: [getPod(pod({ owner: null })), EVICTED] },
      });
      assert.equal(run.status, 1);
      assert.deepEqual(evictionsIn(run), []);
    });

    itRestartsByEviction(restart, { ...TARGET, READY_TIMEOUT: '0' }, ownerPods);

    const notify = scriptOf(workflowTemplate, 'notify');
    const notifyEnv = {
      ...TARGET,
      WORKFLOW_NAME: 'kube-sentinel-complex-failure-recovery-0a1b2c3d',
      ALERTNAME: 'DatabaseConnectionFailed',
      PRIORITY: 'P1',
      RULE: 'complex-failure-recovery',
      VERDICT: 'critical',
      REASON: 'restarted 7 times already: another restart will not help',
    };
    const webhook = 'https://hooks.example.com/services/T000/B000/XXXXSECRET';

    it('succeeds and says nobody was notified when no webhook is set', () => {
      const run = runScript(notify, { env: notifyEnv });
      assert.equal(run.status, 0, run.stderr);
      assert.match(
        run.stdout,
        /nobody was notified of: P1 DatabaseConnectionFailed: pod shop\/checkout-7d9f8b6c5-x2x9k is critical/,
      );
      assert.deepEqual(run.callsTo('curl'), []);
    });

    it('POSTs a JSON summary to the webhook without ever printing its URL', () => {
      const run = runScript(notify, {
        env: { ...notifyEnv, WEBHOOK_URL: webhook },
        answers: { curl: [{ when: [webhook] }] },
      });
      assert.equal(run.status, 0, run.stderr);
      const [args] = run.callsTo('curl');
      assert.ok(args);
      assert.equal(args.at(-1), webhook);
      assert.ok(args.includes('--fail'));
      assert.equal(args[args.indexOf('-H') + 1], 'Content-Type: application/json');
      const payload = JSON.parse(args[args.indexOf('--data') + 1]!);
      assert.deepEqual(payload, {
        text: 'P1 DatabaseConnectionFailed: pod shop/checkout-7d9f8b6c5-x2x9k is critical: restarted 7 times already: another restart will not help (workflow kube-sentinel-complex-failure-recovery-0a1b2c3d)',
        source: 'kube-sentinel',
        workflow: notifyEnv.WORKFLOW_NAME,
        namespace: NAMESPACE,
        pod: POD,
        alertname: 'DatabaseConnectionFailed',
        priority: 'P1',
        rule: 'complex-failure-recovery',
        verdict: 'critical',
        reason: notifyEnv.REASON,
      });
      assert.ok(!(run.stdout + run.stderr).includes('XXXXSECRET'));
    });

    it('fails when the webhook refuses, so the escalation is not silently lost', () => {
      const run = runScript(notify, {
        env: { ...notifyEnv, WEBHOOK_URL: webhook },
        answers: {
          curl: [{ when: [webhook], exit: 22, stderr: 'curl: (22) The requested URL returned error: 500\n' }],
        },
      });
      assert.equal(run.status, 22);
      assert.ok(!(run.stdout + run.stderr).includes('XXXXSECRET'));
    });

    it('refuses a webhook URL that is not http(s)', () => {
      const run = runScript(notify, {
        env: { ...notifyEnv, WEBHOOK_URL: 'file:///var/run/secrets/kubernetes.io/serviceaccount/token' },
      });
      assert.equal(run.status, 1);
      assert.deepEqual(run.callsTo('curl'), []);
    });
  });
});
