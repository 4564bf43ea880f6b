/**
 * What `local-run` shows while it works (issue 13 item 7), on stderr:
 * - on a terminal, one progress bar per run (cli-progress): functions assessed of the inventory, functions
 *   protected, batches done, and the state the run is in;
 * - otherwise plain lines: each run, each state entered, and each batch when it ends, in order ("batch 1 of 6"
 *   before "batch 2 of 6", however the batches finish: one that ends early waits for those before it);
 * - nothing with --quiet.
 *
 * Counts come from the payloads that cross the Lambda boundary (local/asl-local.ts InvokeEvent): a successful
 * `Assess batch` assessed its Items; a `Protect function` whose outcome is PROTECTED protected one function; `Take
 * inventory` names the inventory's size. Events come from the local runner's `onProgress` hook.
 *
 * On a terminal the stream is written with the write function it had when this was built (pinnedStream): the local
 * session captures what the handlers print by replacing process.stderr.write, and the bar also draws from a timer,
 * outside the runner's bypass. Plain lines go through console.error (consoleStream), from the runner's callbacks,
 * which it calls with the real stderr; tests that silence console.error silence them too.
 */
import { SingleBar } from 'cli-progress';
import type { InvokeEvent } from '../../local/asl-local';
import type { SessionProgress } from '../../local/local-runner';

/** Where the progress goes: process.stderr, or a test's fake terminal. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): boolean;
}

/** The same stream, written with its write function as it is now (see the module comment). */
export function pinnedStream(stream: NodeJS.WriteStream | ProgressStream): ProgressStream {
  const write = stream.write.bind(stream) as (chunk: string) => boolean;
  return {
    get isTTY() {
      return stream.isTTY === true;
    },
    get columns() {
      return stream.columns;
    },
    write: (chunk: string) => write(chunk),
  };
}

/** Plain lines through console.error (a chunk is one or more whole lines). */
export function consoleStream(): ProgressStream {
  return {
    isTTY: false,
    write: (chunk: string) => {
      for (const line of chunk.replace(/\n$/, '').split('\n')) console.error(line);
      return true;
    },
  };
}

/** Where local-run's progress goes: the terminal, else console.error. */
export function progressStream(stderr: NodeJS.WriteStream = process.stderr): ProgressStream {
  return stderr.isTTY === true ? pinnedStream(stderr) : consoleStream();
}

export const ASSESS_STATE = 'Assess batch';
export const PROTECT_STATE = 'Protect function';
export const INVENTORY_STATE = 'Take inventory';

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function objectOf(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export class RunProgress {
  private readonly tty: boolean;
  private bar: SingleBar | undefined;
  private run = 0;
  private assessed = 0;
  private protectedCount = 0;
  private total: number;
  private batchesDone = 0;
  private batchTotal = 0;
  private state = '';
  /** Batches that ended before one with a lower index, by index (plain lines only). */
  private readonly waiting = new Map<number, { total: number; failed: boolean }>();
  private nextBatch = 0;

  /**
   * @param functions the estate's size: the bar's total until the inventory gives its own
   * @param options.quiet print nothing
   */
  constructor(
    private readonly stream: ProgressStream,
    functions: number,
    private readonly options: { quiet: boolean },
  ) {
    this.tty = stream.isTTY === true;
    this.total = functions;
  }

  /** A line of the session that is not a run's step (e.g. "Synthesizing the stack ..."). */
  line(text: string): void {
    if (this.options.quiet) return;
    if (this.bar !== undefined) this.stopBar();
    this.stream.write(`${text}\n`);
  }

  /** A run's step, from the local runner's `onProgress`. */
  event(event: SessionProgress): void {
    if (this.options.quiet) return;
    if (event.type === 'run') {
      this.stopBar();
      this.run = event.run;
      this.assessed = 0;
      this.protectedCount = 0;
      this.batchesDone = 0;
      this.batchTotal = 0;
      this.waiting.clear();
      this.nextBatch = 0;
      this.state = '';
      this.stream.write(`Run ${event.run}: ${event.runId} (${event.mode})\n`);
      if (this.tty) this.startBar();
      return;
    }
    if (event.type === 'state') {
      this.state = event.state;
      if (this.tty) this.redraw();
      else this.stream.write(`  ${event.state}\n`);
      return;
    }
    this.batchesDone += 1;
    this.batchTotal = event.total;
    if (this.tty) {
      this.redraw();
      return;
    }
    this.waiting.set(event.index, { total: event.total, failed: event.failed });
    for (let next = this.waiting.get(this.nextBatch); next !== undefined; next = this.waiting.get(this.nextBatch)) {
      this.waiting.delete(this.nextBatch);
      this.nextBatch += 1;
      this.stream.write(
        `    batch ${this.nextBatch} of ${next.total} ${next.failed ? 'FAILED' : 'done'} (so far ${this.assessed} of ${plural(this.total, 'function')} assessed, ${this.protectedCount} protected)\n`,
      );
    }
  }

  /** A Lambda invocation's payloads (the session's `onInvoke`): the counts. */
  invoke(event: Pick<InvokeEvent, 'state' | 'input' | 'output' | 'error'>): void {
    if (event.error !== undefined || event.output === undefined) return;
    if (event.state === INVENTORY_STATE) {
      const count = objectOf(objectOf(event.output)?.['inventory'])?.['count'];
      if (typeof count === 'number') this.total = count;
    } else if (event.state === ASSESS_STATE) {
      const items = objectOf(event.input)?.['Items'];
      if (Array.isArray(items)) this.assessed += items.length;
    } else if (event.state === PROTECT_STATE) {
      if (objectOf(event.output)?.['outcome'] === 'PROTECTED') this.protectedCount += 1;
    } else {
      return;
    }
    if (this.tty) this.redraw();
  }

  /** Ends the bar (its last state stays on the terminal); safe to call more than once. */
  stop(): void {
    this.stopBar();
  }

  private payload(): Record<string, string | number> {
    return {
      run: this.run,
      protected: this.protectedCount,
      batches: this.batchTotal === 0 ? '-' : `${this.batchesDone}/${this.batchTotal}`,
      state: this.state,
    };
  }

  private startBar(): void {
    this.bar = new SingleBar({
      stream: this.stream as unknown as NodeJS.WritableStream,
      format:
        'Run {run} [{bar}] {value}/{total} functions assessed, {protected} protected | batches {batches} | {state}',
      barsize: 20,
      hideCursor: true,
      clearOnComplete: false,
      gracefulExit: false,
    });
    this.bar.start(this.total, this.assessed, this.payload());
  }

  private redraw(): void {
    if (this.bar === undefined) return;
    this.bar.setTotal(this.total);
    this.bar.update(this.assessed, this.payload());
  }

  private stopBar(): void {
    if (this.bar === undefined) return;
    this.redraw();
    this.bar.stop();
    this.bar = undefined;
  }
}
