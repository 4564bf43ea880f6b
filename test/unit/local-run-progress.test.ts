/**
 * local-run's progress (issue 13 item 7): plain lines in order when stderr is not a terminal, a bar with functions
 * assessed and protected on a terminal (a fake TTY stream here), nothing with --quiet.
 */
import { RunProgress, type ProgressStream } from '../../bin/commands/local-run-progress';

function stream(isTTY: boolean): ProgressStream & { text: () => string } {
  const chunks: string[] = [];
  return {
    isTTY,
    columns: 100,
    write: (chunk: string) => {
      chunks.push(String(chunk));
      return true;
    },
    text: () => chunks.join(''),
  };
}

/** One run of 6 batches of 8 functions whose batches end out of order (the last, smallest, second). */
function oneRun(progress: RunProgress): void {
  progress.event({ type: 'run', run: 1, runId: 'local-1', mode: 'protect' });
  progress.event({ type: 'state', state: 'Take inventory' });
  progress.invoke({ state: 'Take inventory', input: {}, output: { inventory: { bucket: 'b', key: 'k', count: 44 } } });
  progress.event({ type: 'state', state: 'Assess every function' });
  for (const index of [0, 5, 2, 1, 4, 3]) {
    const items = Array.from({ length: index === 5 ? 4 : 8 }, (_, i) => ({ name: `f${index}-${i}` }));
    progress.invoke({ state: 'Assess batch', input: { Items: items, BatchInput: {} }, output: { eligible: [] } });
    if (index === 2) {
      progress.invoke({ state: 'Protect function', input: {}, output: { functionName: 'a', outcome: 'PROTECTED' } });
      progress.invoke({ state: 'Protect function', input: {}, output: { functionName: 'b', outcome: 'FAILED' } });
      progress.invoke({ state: 'Protect function', input: {}, error: { name: 'Boom', message: 'x' } });
    }
    progress.event({ type: 'batch', index, total: 6, failed: index === 4 });
  }
  progress.event({ type: 'state', state: 'Finish run' });
}

describe('local-run progress', () => {
  it('without a terminal: each run, state and batch on its own line, batches in order', () => {
    const err = stream(false);
    const progress = new RunProgress(err, 48, { quiet: false });

    progress.line('Synthesizing the stack (the state machine cdk synth produces) ...');
    oneRun(progress);
    progress.stop();

    const lines = err.text().split('\n');
    expect(lines.filter((l) => /batch \d/.test(l)).map((l) => l.trim().split(' (')[0])).toEqual([
      'batch 1 of 6 done',
      'batch 2 of 6 done',
      'batch 3 of 6 done',
      'batch 4 of 6 done',
      'batch 5 of 6 FAILED',
      'batch 6 of 6 done',
    ]);
    expect(lines.slice(0, 5)).toEqual([
      'Synthesizing the stack (the state machine cdk synth produces) ...',
      'Run 1: local-1 (protect)',
      '  Take inventory',
      '  Assess every function',
      // Batch 1 ended first: it is reported at once, with the counts so far.
      '    batch 1 of 6 done (so far 8 of 44 functions assessed, 0 protected)',
    ]);
    // Batches 2 to 4 waited for batch 2; the counts are those when they could be reported.
    expect(lines).toContain('    batch 2 of 6 done (so far 28 of 44 functions assessed, 1 protected)');
    expect(lines[lines.length - 3]).toBe('    batch 6 of 6 done (so far 44 of 44 functions assessed, 1 protected)');
    expect(lines[lines.length - 2]).toBe('  Finish run');
    expect(err.text()).not.toContain('\u001b[');
  });

  it('prints nothing with --quiet', () => {
    const err = stream(false);
    const progress = new RunProgress(err, 48, { quiet: true });
    progress.line('Synthesizing the stack ...');
    oneRun(progress);
    progress.stop();
    const tty = stream(true);
    const bar = new RunProgress(tty, 48, { quiet: true });
    oneRun(bar);
    bar.stop();
    expect([err.text(), tty.text()]).toEqual(['', '']);
  });

  it('on a terminal: a bar with functions assessed and protected and the batches done, no batch lines', () => {
    const err = stream(true);
    const progress = new RunProgress(err, 48, { quiet: false });

    oneRun(progress);
    progress.event({ type: 'run', run: 2, runId: 'local-2', mode: 'protect' });
    progress.stop();

    const text = err.text();
    expect(text).toContain('Run 1: local-1 (protect)\n');
    // The bar's last drawing of run 1 (it stays on the terminal), then run 2's.
    expect(text).toContain(
      'Run 1 [====================] 44/44 functions assessed, 1 protected | batches 6/6 | Finish run',
    );
    expect(text.indexOf('Run 2: local-2 (protect)\n')).toBeGreaterThan(text.indexOf('44/44 functions assessed'));
    expect(text).toContain('Run 2 [--------------------] 0/44 functions assessed, 0 protected | batches - |');
    expect(text).not.toMatch(/batch \d of 6/);
    // The cursor is hidden while the bar draws and shown again at the end.
    expect(text).toContain('\u001b[?25l');
    expect(text.lastIndexOf('\u001b[?25h')).toBeGreaterThan(text.lastIndexOf('\u001b[?25l'));
  });
});
