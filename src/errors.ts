/**
 * The errors the command line ends on, and its exit codes: 0 ok, 1 a failure (invalid rules,
 * failed checks or tests, a fatal error), 2 a bad setting or usage. HTTP errors are in
 * routes/errors.ts; Kubernetes API failures are values (kube/result.ts), not exceptions.
 */

/** A bad setting or usage: the CLI prints the message on one line and exits 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly exitCode = 2;
}

/** Rules that do not load: `file:line: message` lines; the CLI prints them and exits 1. */
export class RulesError extends Error {
  override readonly name = 'RulesError';
  readonly exitCode = 1;
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}
