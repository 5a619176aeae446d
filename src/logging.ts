import { writeSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import type { Config } from './config.js';

export async function createLogger(
  level: Config['logLevel'],
  // Pretty output only for a person at a terminal; JSON lines everywhere else.
  output: { pretty?: boolean; fd?: number } = {},
): Promise<Logger> {
  const pretty = output.pretty ?? (process.stdout.isTTY === true && !process.env.CI);
  const fd = output.fd ?? 1;
  const options = { level, base: { service: 'kube-sentinel' } };
  if (pretty) {
    // In process, as a stream (pino is bundled, so its worker-thread transports cannot find
    // their files), and imported only here: no other start pays for it.
    const { default: pinoPretty } = await import('pino-pretty');
    return pino(options, pinoPretty({ destination: fd, sync: true }));
  }
  // Buffered, asynchronous writes: a synchronous write per decision line would be a large share of
  // the cost of a decision (bench/README.md). What is still buffered is written out when the process exits. The buffer is
  // bounded: if stdout cannot keep up for long, lines are dropped rather than memory exhausted.
  const destination = new TurnBatchedStream(
    pino.destination({ dest: fd, sync: false, maxLength: 16 * 1024 * 1024 }),
    fd,
  );
  process.on('exit', () => destination.flushSync());
  return pino(options, destination);
}

/**
 * Hands the lines of one event-loop turn (a webhook's 20 decision lines) to sonic-boom as one
 * string. sonic-boom measures the byte length of its whole pending buffer on every write, so one
 * write per line makes a busy receiver spend its time counting bytes.
 */
export class TurnBatchedStream {
  private lines: string[] = [];
  private scheduled = false;

  constructor(
    private readonly target: { write(chunk: string): boolean; flushSync(): void },
    private readonly fd: number,
  ) {}

  write(line: string): boolean {
    this.lines.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flushTurn());
    }
    return true;
  }

  /** Everything written so far, to the file descriptor now, in order (at exit). */
  flushSync(): void {
    const chunk = this.take();
    try {
      this.target.flushSync();
    } catch {
      // nothing buffered there yet, or stdout already gone
    }
    try {
      if (chunk) writeSync(this.fd, chunk);
    } catch {
      // stdout already gone
    }
  }

  private flushTurn(): void {
    this.scheduled = false;
    const chunk = this.take();
    if (chunk) this.target.write(chunk);
  }

  private take(): string {
    const chunk = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    return chunk;
  }
}
