import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import net from 'node:net';

/** Children of this test process: killed however the process ends, so no server outlives its test file. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Output kept per process: past MAX_KEPT characters the oldest lines are dropped down to KEPT (a
 * receiver under load logs a line per decision, megabytes in a test). So output() is not all the
 * process printed: count events in the process's metrics, never lines here.
 */
export const MAX_KEPT = 2_000_000;
const KEPT = 1_000_000;

export interface Started {
  child: ChildProcess;
  /**
   * What the process printed (stdout and stderr), for assertions and failure messages: all of it,
   * or the last lines behind a first line saying how much was dropped (MAX_KEPT).
   */
  output(): string;
  /** Resolves with the first match of `pattern` in the output; rejects on exit or after timeoutMs. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends the signal and resolves with the exit code (or signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  exited: Promise<number | string>;
}

export function startProcess(command: string, args: string[], options: SpawnOptions = {}): Started {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  running.add(child);
  let output = '';
  let dropped = 0;
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > MAX_KEPT) {
      // Whole lines go, so what is kept starts at the start of a line.
      const start = output.indexOf('\n', output.length - KEPT) + 1;
      dropped += start;
      output = output.slice(start);
    }
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      for (const listener of listeners) listener();
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const started: Started = {
    child,
    output: () => (dropped === 0 ? output : `[${dropped} characters of earlier output dropped]\n${output}`),
    exited,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (match) {
            done();
            resolve(match);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`${command} exited before printing ${pattern}:\n${output.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${command} did not print ${pattern} within ${timeoutMs} ms:\n${output.slice(-3000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  return started;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until it returns a value other than undefined; rejects after timeoutMs. Waiting on a condition, never a fixed sleep. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
}
