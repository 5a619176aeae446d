/**
 * The fake Kubernetes API (test/support/fake-kube.ts) in a process of its own, with Workflow
 * schema validation off, so that the submit path measures Kube Sentinel rather than the fake.
 * Forked by the runner with an IPC channel; argv: the WorkflowTemplates to serve, as namespace/name.
 *
 * The fake keeps every Workflow and scans them on each create (name conflicts), which would make
 * it slower the longer a run lasts: it forgets stored Workflows (and re-adds the templates)
 * whenever more than a few thousand have piled up, and counts every one it created.
 */
import { startFakeKube } from '../test/support/fake-kube.js';

export type FakeKubeMessage = { type: 'ready'; url: string } | { type: 'created'; total: number };

const KEEP_AT_MOST = 2000;
const PRUNE_EVERY_MS = 250;

const templates = process.argv.slice(2).map((ref) => {
  const [namespace, name] = ref.split('/');
  if (!namespace || !name) throw new Error(`expected namespace/name, got ${ref}`);
  return { namespace, name };
});

const fake = await startFakeKube({ validate: false });
const addTemplates = () => {
  for (const t of templates) fake.addWorkflowTemplate(t.namespace, t.name);
};
addTemplates();

let forgotten = 0;
const created = () => forgotten + fake.workflows.length;
setInterval(() => {
  const stored = fake.workflows.length;
  if (stored < KEEP_AT_MOST) return;
  forgotten += stored;
  fake.reset();
  addTemplates();
}, PRUNE_EVERY_MS).unref();

if (!process.send)
  throw new Error('bench/fake-kube-server.ts runs as a child of bench/run.ts (it needs an IPC channel)');
process.send({ type: 'ready', url: fake.url } satisfies FakeKubeMessage);
process.on('message', (message: { type: 'count' }) => {
  if (message.type === 'count') process.send!({ type: 'created', total: created() } satisfies FakeKubeMessage);
});
process.on('disconnect', () => {
  fake.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
