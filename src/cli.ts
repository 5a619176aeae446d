#!/usr/bin/env node
import { runCheck } from './commands/check.js';
import { explainAlerts } from './commands/explain.js';
import { listPauses, PAUSE_USAGE, pause, unpause } from './commands/pauses.js';
import { runRuleTests } from './commands/test.js';
import { type Config, loadConfig, SERVE_FLAGS } from './config.js';
import { ConfigError, RulesError } from './errors.js';
import { KubeconfigError } from './kube/client.js';
import { createLogger } from './logging.js';
import { loadRules } from './rules/load.js';
import { closeOnSignals, startServer } from './server.js';

const USAGE = `Usage: kube-sentinel <command> [options]

Turns alerts (Alertmanager webhook, Prometheus / Loki ruler via /api/v2/alerts) into Argo Workflows.

Commands:
  serve [flags]                      run the receiver
  validate [PATH]                    check rules; prints file:line: message for every problem; exit 1 on any
  explain --alert FILE [--rules P]   which rule matches the alert(s) in FILE, the cooldown key and the
                                     Workflow that would be submitted, as YAML; no side effects
  check [--rules P] [flags]          against the configured cluster (each of --clusters, by name): every
                                     WorkflowTemplate the rules use exists, and workflows may be created
                                     in each target namespace; prints the fix for each failure; exit 1
                                     on any, 2 without a cluster or with a kubeconfig that cannot work
  test FILE...                       run rule unit tests; exit 1 on any failure
${PAUSE_USAGE}

serve flags (each also an environment variable; the flag wins):
${SERVE_FLAGS.map((f) => `  ${(f.flag + (f.boolean ? '' : ' VALUE')).padEnd(36)} ${f.env ?? ''}`).join('\n')}

Exit codes: 0 ok, 1 failure (invalid rules, failed tests, fatal error, a refusal by the receiver),
2 bad setting or usage.
`;

type Env = Record<string, string | undefined>;

/** Splits out the named options a command takes itself; everything else is a serve setting. */
function takeOption(args: string[], name: string): string | undefined {
  const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  const arg = args[i]!;
  if (arg.includes('=')) {
    args.splice(i, 1);
    return arg.slice(name.length + 1);
  }
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) throw new ConfigError(`invalid ${name}: a value is required`);
  args.splice(i, 2);
  return value;
}

async function serve(args: string[], env: Env): Promise<number> {
  const config = loadConfig(args, env);
  const logger = await createLogger(config.logLevel);
  try {
    const server = await startServer(config, env, logger);
    closeOnSignals(server, logger);
    return -1; // keeps running
  } catch (err) {
    if (err instanceof RulesError) {
      process.stderr.write(`kube-sentinel: rules in ${config.rules} are invalid:\n${err.problems.join('\n')}\n`);
      return 1;
    }
    if (err instanceof ConfigError || err instanceof KubeconfigError) throw err;
    logger.fatal({ err }, 'could not start');
    return 1;
  }
}

async function validate(args: string[], env: Env): Promise<number> {
  if (args.length > 1 || args[0]?.startsWith('--')) throw new ConfigError('usage: kube-sentinel validate [PATH]');
  const path = args[0] ?? loadConfig([], env).rules;
  const result = await loadRules(path);
  if (!result.ok) {
    process.stderr.write(`${result.errors.join('\n')}\n`);
    return 1;
  }
  for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(`${path}: ${result.ruleSet.rules.length} rules OK (${result.ruleSet.files.length} files)\n`);
  return 0;
}

async function explain(args: string[], env: Env): Promise<number> {
  const file = takeOption(args, '--alert');
  if (!file) throw new ConfigError('usage: kube-sentinel explain --alert FILE [--rules PATH]');
  return explainAlerts(file, loadConfig(args, env));
}

async function test(args: string[], env: Env): Promise<number> {
  if (args.length === 0) throw new ConfigError('usage: kube-sentinel test FILE...');
  const config: Config = loadConfig([], env);
  const report = await runRuleTests(args, config);
  for (const message of report.messages) process.stderr.write(`${message}\n`);
  process.stdout.write(`${report.passed} passed, ${report.failed} failed\n`);
  return report.failed > 0 ? 1 : 0;
}

async function check(args: string[], env: Env): Promise<number> {
  return runCheck(loadConfig(args, env), env);
}

export async function main(argv: string[], env: Env): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(args, env);
      case 'validate':
        return await validate(args, env);
      case 'explain':
        return await explain(args, env);
      case 'test':
        return await test(args, env);
      case 'check':
        return await check(args, env);
      case 'pause':
        return await pause(args, env);
      case 'pauses':
        return await listPauses(args, env);
      case 'unpause':
        return await unpause(args, env);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new ConfigError(`unknown command "${command}" (see kube-sentinel --help)`);
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof KubeconfigError) {
      process.stderr.write(`kube-sentinel: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

const argv = process.argv.slice(2);
if (argv.includes('--help') && argv[0] !== undefined && argv[0] !== '--help') {
  process.stdout.write(USAGE);
} else {
  const code = await main(argv, process.env);
  // One-shot commands end here even if a client left a keep-alive socket open (stdout on a pipe
  // or file is written synchronously on Linux, so nothing printed is lost).
  if (code >= 0) process.exit(code);
}
