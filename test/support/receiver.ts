import { fileURLToPath } from 'node:url';
import { type Started, startProcess } from './processes.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface Receiver {
  url: string;
  process: Started;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * The built `kube-sentinel serve` (dist/cli.js; `npm test` builds first) as a user runs it.
 * Resolves once it logs that it listens.
 */
export async function startReceiver(args: string[], env: Record<string, string> = {}): Promise<Receiver> {
  const process = startProcess('node', [CLI, 'serve', '--host', '127.0.0.1', ...args], {
    cwd: REPO_ROOT,
    env: { PATH: globalThis.process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
  });
  const [, url] = await process.waitFor(/"url":"(http:\/\/[^"]+)".*"msg":"kube-sentinel listening"/);
  return { url: url!, process, stop: (signal) => process.stop(signal) };
}
