import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';

/** A real redis-server owned by one test file: nothing is saved, and it dies with the test process. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Kills the server; clients see the connection drop. */
  stop(): Promise<void>;
  /** Starts an empty server again on the same port (after stop). */
  start(): Promise<void>;
  /** SIGSTOP: the socket stays open but nothing answers, like an overloaded Redis. */
  pause(): void;
  /** SIGCONT after pause. */
  resume(): void;
}

const READY_TIMEOUT_MS = 10_000;
const PING_TIMEOUT_MS = 500;
const PORT_ATTEMPTS = 5;
const OUTPUT_TAIL_CHARS = 4000;

/** Every server still running when the test process exits, however it exits. */
const running = new Set<ChildProcess>();
function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}
process.on('exit', killAll);
// A signal ends the process without 'exit' (the test runner cancels a file with SIGTERM):
// kill the servers, then let the signal do what it would have done.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}

let prefixCounter = 0;

/** A key prefix no other test (in this or another process) uses. */
export function uniquePrefix(): string {
  prefixCounter += 1;
  return `kube-sentinel-test:${process.pid}:${prefixCounter}:${randomUUID().slice(0, 8)}:`;
}

/** `password`: the server requires it (`--requirepass`); `url` carries it. */
export async function startRedis(options: { password?: string } = {}): Promise<RedisServer> {
  assertInstalled();
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    try {
      const child = await launch(port, options.password);
      return control(port, child, options.password);
    } catch (error) {
      // Another process may take the port between freePort() and redis-server binding it.
      if (!(error instanceof PortTakenError)) throw error;
      lastError = error;
    }
  }
  throw new Error(`could not start redis-server on a free port after ${PORT_ATTEMPTS} attempts`, { cause: lastError });
}

function control(port: number, first: ChildProcess, password?: string): RedisServer {
  let child: ChildProcess | undefined = first;
  return {
    url:
      password === undefined
        ? `redis://127.0.0.1:${port}`
        : `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    port,
    async stop() {
      if (!child) return;
      const stopping = child;
      child = undefined;
      await kill(stopping);
    },
    async start() {
      if (child) throw new Error(`redis-server on port ${port} is already running`);
      child = await launch(port, password);
    },
    pause() {
      if (!child) throw new Error(`redis-server on port ${port} is not running`);
      child.kill('SIGSTOP');
    },
    resume() {
      if (!child) throw new Error(`redis-server on port ${port} is not running`);
      child.kill('SIGCONT');
    },
  };
}

export class PortTakenError extends Error {}

export function assertInstalled(): void {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  if (probe.error) {
    throw new Error('redis-server is not installed; these tests need a real one: apt-get install -y redis-server', {
      cause: probe.error,
    });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => (port ? resolve(port) : reject(new Error('no port from the OS'))));
    });
  });
}

function launch(port: number, password?: string): Promise<ChildProcess> {
  return launchRedis('redis-server', serverArgs(port, password), port, 'Ready to accept connections', password);
}

/** A redis-server's arguments for a throwaway server on `port`: nothing saved, loopback only. */
export function serverArgs(port: number, password?: string): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    ...(password === undefined ? [] : ['--requirepass', password]),
  ];
}

/**
 * Ready means this child said so (`ready` in its output): a PING alone could be answered by
 * another process's Redis that took the port first. A PING then confirms it serves. The child
 * is killed when the test process exits.
 */
export async function launchRedis(
  command: 'redis-server' | 'redis-sentinel',
  args: string[],
  port: number,
  ready: string,
  password?: string,
): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  // A forgotten server must not keep the test process alive; the exit handler kills it.
  child.unref();

  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', collect);
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${command} on port ${port} was not ready after ${READY_TIMEOUT_MS} ms:\n${output}`));
      }, READY_TIMEOUT_MS);
      const onData = (): void => {
        if (output.includes(ready)) {
          cleanup();
          resolve();
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        cleanup();
        const message = `${command} on port ${port} exited (${signal ?? code}) before it was ready:\n${output}`;
        reject(output.includes('Address already in use') ? new PortTakenError(message) : new Error(message));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
      };
      child.stdout?.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onExit.bind(null, null, null));
    });
    if (!(await ping(port, password)))
      throw new Error(`${command} on port ${port} said it was ready but does not answer PING`);
  } catch (error) {
    await kill(child);
    throw error;
  }
  return child;
}

export async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Unreferenced, the child alone would not keep the event loop alive until it has exited.
  child.ref();
  // SIGKILL also ends a SIGSTOPped server, and there is nothing to save.
  child.kill('SIGKILL');
  await exited;
}

function ping(port: number, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (answered: boolean): void => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(PING_TIMEOUT_MS, () => finish(false));
    // With a password: AUTH first, then PING; the answer to PING is the last line.
    const auth = password === undefined ? '' : `AUTH ${password}\r\n`;
    const lines = password === undefined ? 1 : 2;
    socket.once('connect', () => socket.write(`${auth}PING\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const answers = reply.split('\r\n').slice(0, -1);
      if (answers.length >= lines) finish(answers[lines - 1] === '+PONG');
    });
    socket.once('error', () => finish(false));
  });
}
