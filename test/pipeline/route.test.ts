import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Alert } from '../../src/alert.js';
import type { Decision } from '../../src/decision.js';
import type { WorkflowSubmitter } from '../../src/kube/client.js';
import { clusterSubmitter } from '../../src/kube/clusters.js';
import { AnnotationKey, type Workflow } from '../../src/kube/workflow.js';
import { type ClusterRouting, clusterOf, routeToCluster } from '../../src/pipeline/route.js';
import type { Matched } from '../../src/pipeline/stage.js';
import { rulesFrom, TEST_RULES } from '../support/app.js';

const ROUTING: ClusterRouting = { label: 'cluster', defaultCluster: 'east', names: ['east', 'west'] };

function alert(labels: Record<string, string>): Alert {
  return { source: 'api_v2', status: 'firing', labels, annotations: {}, fingerprint: 'fp' };
}

describe('routing an alert to a cluster (--clusters)', () => {
  it('takes the cluster from the label, the default when the label is absent or empty', () => {
    assert.equal(clusterOf(alert({ cluster: 'west' }), ROUTING), 'west');
    assert.equal(clusterOf(alert({}), ROUTING), 'east');
    assert.equal(clusterOf(alert({ cluster: '' }), ROUTING), 'east');
    assert.equal(clusterOf(alert({ k8s: 'west' }), { ...ROUTING, label: 'k8s' }), 'west');
  });

  it('never reads an inherited property as the label', () => {
    assert.equal(clusterOf(alert({}), { ...ROUTING, label: 'constructor' }), 'east');
  });

  it('decides invalid_target for a cluster not configured, naming it and the known ones; passes a known one on', async () => {
    const ruleSet = await rulesFrom(TEST_RULES);
    const rule = ruleSet.rules[0]!;
    const stage = routeToCluster(ROUTING);
    const refused = stage({ alert: alert({ cluster: 'north' }), ruleSet, rule, cluster: 'north' }) as Decision;
    assert.equal(refused.outcome, 'invalid_target');
    assert.equal(refused.rule, rule.name);
    assert.equal(
      refused.reason,
      'label "cluster" names cluster "north", which is not configured (clusters: east, west)',
    );
    const passed = stage({ alert: alert({ cluster: 'west' }), ruleSet, rule, cluster: 'west' }) as Matched;
    assert.equal(passed.cluster, 'west');
    const unrouted = routeToCluster(undefined)({ alert: alert({ cluster: 'north' }), ruleSet, rule }) as Matched;
    assert.equal(unrouted.cluster, undefined, 'without --clusters every alert passes, naming no cluster');
  });
});

describe('the submitter of many clusters', () => {
  const recording = (target: string): WorkflowSubmitter & { created: string[] } => ({
    mode: 'cluster',
    target,
    created: [],
    async create(workflow) {
      this.created.push(workflow.metadata.name);
      return { kind: 'created', status: 201, retryable: false };
    },
  });
  const workflow = (cluster?: string): Workflow => ({
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Workflow',
    metadata: {
      name: `wf-${cluster ?? 'none'}`,
      namespace: 'argo',
      labels: {},
      annotations: cluster === undefined ? {} : { [AnnotationKey.Cluster]: cluster },
    },
    spec: {
      arguments: { parameters: [] },
      ttlStrategy: { secondsAfterCompletion: 1, secondsAfterFailure: 1, secondsAfterSuccess: 1 },
    },
  });

  it('creates each Workflow through the submitter of the cluster it is annotated with, and only that one', async () => {
    const east = recording('https://east');
    const west = recording('https://west');
    const submitter = clusterSubmitter(
      new Map([
        ['east', east],
        ['west', west],
      ]),
    );
    assert.equal((await submitter.create(workflow('west'), 1000)).kind, 'created');
    assert.deepEqual([east.created, west.created], [[], ['wf-west']]);
    assert.equal(submitter.target, 'east=https://east, west=https://west');
  });

  it('refuses, sending nothing, a Workflow that names no configured cluster', async () => {
    const east = recording('https://east');
    const submitter = clusterSubmitter(new Map([['east', east]]));
    for (const given of [workflow('north'), workflow()]) {
      const result = await submitter.create(given, 1000);
      assert.equal(result.kind, 'failed');
      assert.equal(result.kind === 'failed' && result.mayHaveLanded, false);
    }
    assert.deepEqual(east.created, []);
  });
});
