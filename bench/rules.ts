/**
 * Rule files as a large team writes them: distinct literal-ish patterns per service and error
 * code, a mix of label matchers and namespace allow-lists, priorities spread over P1–P4. Most
 * rules match nothing the bench sends; a few decoys share the alert's pattern but not its labels
 * (so a prefilter on patterns alone cannot decide); the one rule that matches is the last one
 * tried (P4, last in the file), so every decision walks the whole set.
 */

import { Random } from '../test/support/fuzz.js';

/** mulberry32 (the fuzz tests' generator): the same rules on every run. */
function random(seed: number): () => number {
  const generator = new Random(seed);
  return () => generator.next();
}

const WORDS = [
  'billing',
  'ledger',
  'search',
  'indexer',
  'gateway',
  'mailer',
  'thumbnailer',
  'scheduler',
  'inventory',
  'pricing',
];
const PRIORITIES = ['P1', 'P2', 'P3', 'P4'] as const;
const TEMPLATES = [
  'diagnose-pod',
  'diagnose-memory',
  'network-diagnostics',
  'check-image-registry',
  'diagnose-and-recover',
];

/** The rule the bench's crash-loop alerts match, always tried last. */
export const MATCHING_RULE = 'crashloop-catch-all';

function pattern(n: number, next: () => number): string {
  const word = WORDS[Math.floor(next() * WORDS.length)]!;
  const code = 1000 + Math.floor(next() * 9000);
  switch (n % 10) {
    case 0:
      return `(?i)error-code-${code}|timeout in service-${n % 97}`;
    case 1:
      return `upstream ${word}-${n} (unavailable|degraded)`;
    case 2:
      return `(?i)queue ${word}-${n} is (full|stalled)`;
    case 3:
      return `disk pressure on node-${n}\\b`;
    case 4:
      return `certificate for ${word}-${n}\\.example\\.com expires in [0-9]+ days`;
    case 5:
      return `(?i)deadlock detected in ${word}_${n}`;
    case 6:
      return `panic: runtime error in ${word}-handler-${n}`;
    case 7:
      return `(?i)(payment|order|invoice) ${code} (rejected|failed)`;
    case 8:
      return `${word}[-_]worker-${n} exited with code [1-9][0-9]*`;
    default:
      return `(?i)too many open files .* ${word}-${n}`;
  }
}

function labelMatchers(n: number, next: () => number): string[] {
  const roll = next();
  if (roll < 0.4) return [];
  if (roll < 0.7) return ['severity=~"critical|warning"'];
  if (roll < 0.85) return [`team=~"team-${n % 13}|team-${(n + 5) % 13}"`, 'severity!="info"'];
  return ['namespace!="kube-system"', 'cluster="prod-eu-1"'];
}

/** YAML of `count` rules: count - 1 that do not act on the bench alerts, then the one that does. */
export function generatedRules(count: number, seed = 42): string {
  const next = random(seed);
  const lines = ['excluded_namespaces: [kube-system]', 'rules:'];
  const rule = (
    name: string,
    priority: string,
    patternText: string,
    labels: string[],
    namespaces: string[],
    template: string,
  ) => {
    lines.push(`  - name: ${name}`, '    match:', `      pattern: ${JSON.stringify(patternText)}`);
    if (labels.length > 0) lines.push(`      labels: [${labels.map((l) => JSON.stringify(l)).join(', ')}]`);
    if (namespaces.length > 0)
      lines.push(`      namespaces: [${namespaces.map((ns) => JSON.stringify(ns)).join(', ')}]`);
    lines.push(
      `    priority: ${priority}`,
      '    remediation:',
      '      action: trigger-argo-workflow',
      '      params:',
      `        workflow_template: ${template}`,
      '      cooldown: 10m',
    );
  };
  for (let n = 0; n < count - 1; n++) {
    const priority = PRIORITIES[Math.floor(next() * PRIORITIES.length)]!;
    const template = TEMPLATES[n % TEMPLATES.length]!;
    // One rule in fifty is a decoy: the alert's own pattern, for a team or namespace it is not in.
    if (n % 50 === 25) {
      rule(`decoy-${n}`, priority, '(?i)CrashLoopBackOff', [`team="team-${n}"`], [], template);
      continue;
    }
    const namespaces = next() < 0.15 ? [`tenant-${n % 31}`, `tenant-${(n + 11) % 31}`] : [];
    rule(
      `rule-${String(n).padStart(4, '0')}`,
      priority,
      pattern(n, next),
      labelMatchers(n, next),
      namespaces,
      template,
    );
  }
  rule(
    MATCHING_RULE,
    'P4',
    '(?i)CrashLoopBackOff|crash[ -]?looping',
    ['severity=~"critical|warning"'],
    [],
    'diagnose-pod',
  );
  return `${lines.join('\n')}\n`;
}
