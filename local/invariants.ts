/**
 * The checker of issue 9's six invariants, after a scenario: from the audit items, the SNS messages, the handlers'
 * logs and the function configurations before the first run and after the last. PURE: data in, violations out.
 *
 * Evidence names items by function, run, sort key and outcome, and variables by name: never a value (a customer
 * value must not leak through the checker's own report).
 *
 * How each invariant is read from the data:
 * 1. A change is a final configuration that differs from the initial one in layers, variables or handler, or a
 *    PROTECTED item. A PROTECTED item needs a PENDING of the same function written before it in the same run. A
 *    changed configuration needs a PENDING followed (same run) by a final item (PROTECTED or FAILED), or a later
 *    `reconciled: true` final item. A PENDING needs a final decision of its run after it (a SKIPPED counts: the
 *    update never happened) or a later reconciled one. A PENDING left without one must be reconciled; when its
 *    run is the last one and was killed, it is only unfinished (no later run could have reconciled it yet), and so
 *    is the change it describes (invariants 1 and 2 accept it).
 * 2. No PENDING or PROTECTED item in a dry-run run, and no changed configuration when every run was a dry run. No
 *    function has both a SKIPPED and a PROTECTED decision in one run, nor a changed configuration while its only
 *    decisions are skips.
 * 3. A changed function keeps every layer other than ours in order, every variable other than ours byte for byte,
 *    gains no other variable, and its handler is unchanged or ours.
 * 4. Every inventory function of every run that was not killed has exactly one final decision item (kind decision,
 *    not PENDING, not ROLLED_BACK, not `reconciled`); a FAILED names its error (detail or reasons).
 * 5. No configuration (final, or an audit after-image) carries two versions of our layer that it did not carry
 *    before (initial configuration, before-image). No PROTECTED whose
 *    before-image equals the after-image of the function's previous PROTECTED, without a ROLLED_BACK in between (a
 *    flip-flop). With notifications "changed": no skip message published twice for a function with the same reasons
 *    and no different decision message in between (the same notice again, same `noticeId`, is an at-least-once
 *    redelivery, not a repeated message); and every new SKIPPED or FAILED decision (repeat false) has its
 *    message, in its run or a later one, or its run is still in the outbox (owed, not lost), except a reconciled SKIPPED that names no reason (nothing was
 *    changed, no gate failed: the operator's ReconciledChanges alarm says a run died, the owner has nothing to do).
 * 6. No secret (nor its JSON-escaped form, base64, or SHA-256 in hex or base64) in a log line, an audit item or an
 *    SNS message. Secrets shorter than 4 characters are ignored (they would match everywhere).
 */
import { createHash } from 'node:crypto';
import type { FunctionConfiguration, Mode } from '../lambdas/shared/domain/types';

export interface RunInput {
  runId: string;
  /** The function names of the run's inventory. */
  inventory: string[];
  /** The run was killed (scenario `kill`): invariant 4 is not checked for it. */
  killed?: boolean;
  mode: Mode;
  /** @default "changed" */
  notifications?: 'changed' | 'always';
}

/** An audit item as plain JSON (local/local-runner.ts scans them; fields may be missing in a broken run). */
export interface AuditRecord {
  functionName: string;
  sk: string;
  kind?: string;
  runId: string;
  decidedAt?: string;
  mode?: string;
  outcome: string;
  reasons?: string[];
  detail?: string;
  repeat?: boolean;
  reconciled?: boolean;
  before?: { layers?: string[]; variableNames?: string[]; variableHashes?: Record<string, string>; handler?: unknown };
  after?: { layers?: string[]; variableNames?: string[]; variableHashes?: Record<string, string>; handler?: unknown };
  [key: string]: unknown;
}

export interface MessageRecord {
  runId: string | null;
  subject: string | null;
  message: string;
  attributes: Record<string, { DataType?: string; StringValue?: string }>;
}

export interface InvariantInput {
  /** In order, oldest first. */
  runs: RunInput[];
  auditItems: readonly AuditRecord[];
  messages: readonly MessageRecord[];
  logs: readonly string[];
  initialConfigurations: readonly FunctionConfiguration[];
  finalConfigurations: readonly FunctionConfiguration[];
  /** Customer variable values to look for (invariant 6). */
  secrets: readonly string[];
  /** What protection adds: our layer version ARN, our variable names, and in handler mode our handler. */
  ours: { layerArn: string; variableNames: readonly string[]; handler?: string };
  /** Functions whose layers, variables or handler the scenario changed out of band (deploy events): not ours. */
  outOfBand?: readonly string[];
  /**
   * Runs whose owed notices are still kept in the state table's outbox (lambdas/shared/notices.ts): their unsent
   * notices are owed, sent by the next run's start, not lost.
   */
  outbox?: readonly string[];
  /**
   * Decisions record-failure left in the S3 fallback (`runs/<runId>/unrecorded/<fn>.json`) that no run has replayed
   * yet: durable, written to the table by the next run's start. Only the last run may leave such (an earlier run's
   * are replayed by the run after it, or they are a violation).
   */
  unrecorded?: ReadonlyArray<{ runId: string; functionName: string }>;
}

export interface Violation {
  invariant: 1 | 2 | 3 | 4 | 5 | 6;
  function?: string;
  evidence: string;
}

export interface InvariantReport {
  checked: number[];
  violations: Violation[];
}

const FINAL_CHANGE = new Set(['PROTECTED', 'FAILED']);

function layerName(arn: string): string {
  return arn.replace(/:\d+$/, '');
}

function layersOf(config: FunctionConfiguration | undefined): string[] {
  return (config?.Layers ?? []).map((l) => String(l?.Arn ?? ''));
}

function variablesOf(config: FunctionConfiguration | undefined): Record<string, string> {
  const vars = config?.Environment?.Variables;
  return vars !== null && typeof vars === 'object' ? vars : {};
}

function order(item: AuditRecord): string {
  return `${item.decidedAt ?? ''}#${item.sk}`;
}

function isDecision(item: AuditRecord): boolean {
  return (item.kind ?? 'decision') === 'decision' && item.functionName !== '#run';
}

function isFinal(item: AuditRecord): boolean {
  return isDecision(item) && item.outcome !== 'PENDING' && item.outcome !== 'ROLLED_BACK';
}

function name(item: AuditRecord): string {
  return `item ${item.sk} (${item.outcome})`;
}

/** A function changed between the initial and the final configuration: layers, variables or handler. */
function changed(initial: FunctionConfiguration | undefined, final: FunctionConfiguration | undefined): boolean {
  if (initial === undefined || final === undefined) return false;
  if (JSON.stringify(layersOf(initial)) !== JSON.stringify(layersOf(final))) return true;
  const a = variablesOf(initial);
  const b = variablesOf(final);
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) if (a[key] !== b[key]) return true;
  return (initial.Handler ?? null) !== (final.Handler ?? null);
}

function byName(configs: readonly FunctionConfiguration[]): Map<string, FunctionConfiguration> {
  return new Map(configs.filter((c) => typeof c.FunctionName === 'string').map((c) => [c.FunctionName as string, c]));
}

class Checker {
  readonly violations: Violation[] = [];
  private readonly items: AuditRecord[];
  private readonly runIndex: Map<string, number>;
  private readonly initial: Map<string, FunctionConfiguration>;
  private readonly final: Map<string, FunctionConfiguration>;
  private readonly outOfBand: Set<string>;

  constructor(private readonly input: InvariantInput) {
    this.items = [...input.auditItems].sort((a, b) => order(a).localeCompare(order(b)));
    this.runIndex = new Map(input.runs.map((r, i) => [r.runId, i]));
    this.initial = byName(input.initialConfigurations);
    this.final = byName(input.finalConfigurations);
    this.outOfBand = new Set(input.outOfBand ?? []);
  }

  private add(invariant: Violation['invariant'], fn: string | undefined, evidence: string): void {
    this.violations.push({ invariant, ...(fn !== undefined ? { function: fn } : {}), evidence });
  }

  private itemsOf(fn: string): AuditRecord[] {
    return this.items.filter((i) => i.functionName === fn && isDecision(i));
  }

  private runPosition(runId: string): number {
    return this.runIndex.get(runId) ?? -1;
  }

  private changedFunctions(): string[] {
    return [...this.initial.keys()].filter(
      (fn) => !this.outOfBand.has(fn) && changed(this.initial.get(fn), this.final.get(fn)),
    );
  }

  /**
   * The function has a PENDING in the last run, which was killed, without a final item in that run: unfinished, as
   * invariant 1 allows until a next run reconciles it (none has been run yet).
   */
  private unfinishedInKilledLastRun(fn: string): boolean {
    const lastRun = this.input.runs[this.input.runs.length - 1];
    if (lastRun === undefined) return false;
    // The last run's decision kept in the S3 fallback: durable, replayed by the next run's start.
    if (this.lastRunUnrecorded(lastRun.runId, fn)) return true;
    if (lastRun.killed !== true) return false;
    const mine = this.itemsOf(fn).filter((i) => i.runId === lastRun.runId);
    return mine.some((i) => i.outcome === 'PENDING') && !mine.some(isFinal);
  }

  /** The function's decision of `runId`, the last run, is kept in the S3 fallback (see InvariantInput.unrecorded). */
  private lastRunUnrecorded(runId: string, fn: string): boolean {
    const lastRun = this.input.runs[this.input.runs.length - 1];
    return (
      lastRun?.runId === runId && (this.input.unrecorded ?? []).some((u) => u.runId === runId && u.functionName === fn)
    );
  }

  invariant1(): void {
    const lastRun = this.input.runs[this.input.runs.length - 1];
    const functions = new Set(this.items.filter(isDecision).map((i) => i.functionName));
    for (const fn of functions) {
      const items = this.itemsOf(fn);
      items.forEach((item, at) => {
        if (item.outcome === 'PROTECTED' && item.reconciled !== true) {
          const pending = items.slice(0, at).some((p) => p.outcome === 'PENDING' && p.runId === item.runId);
          if (!pending) this.add(1, fn, `${name(item)} has no PENDING written before it in run ${item.runId}`);
        }
        if (item.outcome === 'PENDING') {
          const later = items.slice(at + 1);
          // Any final decision completes it: PROTECTED, FAILED, or a SKIPPED that changed nothing (the function
          // was deleted or changed under the run before the update reached it).
          const completed = later.some((l) => l.runId === item.runId && isFinal(l));
          const reconciled = later.some((l) => l.reconciled === true && isFinal(l));
          if (!completed && !reconciled) {
            const unfinished = lastRun?.runId === item.runId && this.unfinishedInKilledLastRun(fn);
            if (!unfinished) {
              this.add(1, fn, `${name(item)} has no final item in its run and no later reconciled final item`);
            }
          }
        }
      });
    }
    for (const fn of this.changedFunctions()) {
      const items = this.itemsOf(fn);
      const ok = items.some((p, at) => {
        if (p.outcome !== 'PENDING') return false;
        const later = items.slice(at + 1);
        return (
          later.some((l) => l.runId === p.runId && FINAL_CHANGE.has(l.outcome)) ||
          later.some((l) => l.reconciled === true && isFinal(l))
        );
      });
      if (!ok && !this.unfinishedInKilledLastRun(fn)) {
        this.add(
          1,
          fn,
          'the configuration changed (layers, variables or handler) without a PENDING item followed by a final item',
        );
      }
    }
  }

  invariant2(): void {
    const modes = new Map(this.input.runs.map((r) => [r.runId, r.mode]));
    for (const item of this.items.filter(isDecision)) {
      if (modes.get(item.runId) === 'dry-run' && (item.outcome === 'PENDING' || item.outcome === 'PROTECTED')) {
        this.add(2, item.functionName, `${name(item)} in dry-run run ${item.runId}`);
      }
    }
    const allDry = this.input.runs.length > 0 && this.input.runs.every((r) => r.mode === 'dry-run');
    for (const fn of this.changedFunctions()) {
      if (allDry) this.add(2, fn, 'the configuration changed although every run was a dry run');
      const finals = this.itemsOf(fn).filter(isFinal);
      if (finals.length > 0 && finals.every((i) => i.outcome === 'SKIPPED') && !this.unfinishedInKilledLastRun(fn)) {
        this.add(2, fn, 'the configuration changed although every decision on the function was SKIPPED');
      }
    }
    for (const run of this.input.runs) {
      const byFunction = new Map<string, Set<string>>();
      for (const item of this.items.filter((i) => i.runId === run.runId && isFinal(i))) {
        const outcomes = byFunction.get(item.functionName) ?? new Set<string>();
        outcomes.add(item.outcome);
        byFunction.set(item.functionName, outcomes);
      }
      for (const [fn, outcomes] of byFunction) {
        if (outcomes.has('SKIPPED') && outcomes.has('PROTECTED')) {
          this.add(2, fn, `both SKIPPED and PROTECTED in run ${run.runId}`);
        }
      }
    }
  }

  invariant3(): void {
    const ourLayer = layerName(this.input.ours.layerArn);
    const ourVariables = new Set(this.input.ours.variableNames);
    for (const fn of this.changedFunctions()) {
      const before = this.initial.get(fn);
      const after = this.final.get(fn);
      const otherLayers = (config: FunctionConfiguration | undefined): string[] =>
        layersOf(config).filter((arn) => layerName(arn) !== ourLayer);
      if (JSON.stringify(otherLayers(before)) !== JSON.stringify(otherLayers(after))) {
        this.add(3, fn, 'layers other than ours were removed, added or reordered');
      }
      const a = variablesOf(before);
      const b = variablesOf(after);
      for (const key of Object.keys(a).filter((k) => !ourVariables.has(k))) {
        if (!(key in b)) this.add(3, fn, `variable ${key} was removed`);
        else if (a[key] !== b[key]) this.add(3, fn, `variable ${key} changed value`);
      }
      for (const key of Object.keys(b).filter((k) => !ourVariables.has(k) && !(k in a))) {
        this.add(3, fn, `variable ${key} was added and is not ours`);
      }
      const handlerBefore = before?.Handler ?? null;
      const handlerAfter = after?.Handler ?? null;
      if (handlerBefore !== handlerAfter && handlerAfter !== (this.input.ours.handler ?? null)) {
        this.add(3, fn, 'the handler changed to one that is not ours');
      }
    }
  }

  invariant4(): void {
    for (const run of this.input.runs) {
      if (run.killed === true) continue;
      const finals = this.items.filter((i) => i.runId === run.runId && isFinal(i) && i.reconciled !== true);
      for (const fn of run.inventory) {
        const mine = finals.filter((i) => i.functionName === fn);
        const keptInS3 = this.lastRunUnrecorded(run.runId, fn);
        if (mine.length === 0 && !keptInS3) this.add(4, fn, `no final decision in run ${run.runId}`);
        if (mine.length > 1) {
          this.add(4, fn, `${mine.length} final decisions in run ${run.runId}: ${mine.map((i) => i.sk).join(', ')}`);
        }
        for (const item of mine) {
          if (item.outcome === 'FAILED' && (item.detail ?? '').length === 0 && (item.reasons ?? []).length === 0) {
            this.add(4, fn, `${name(item)} does not name its error`);
          }
        }
      }
      const inventory = new Set(run.inventory);
      for (const item of finals.filter((i) => !inventory.has(i.functionName))) {
        this.add(4, item.functionName, `${name(item)} in run ${run.runId} for a function outside its inventory`);
      }
    }
  }

  invariant5(): void {
    const ourLayer = layerName(this.input.ours.layerArn);
    const ours = (layers: readonly string[]): number => layers.filter((l) => layerName(l) === ourLayer).length;
    // A function that already carried two versions before the first run (a team's own doing, which the funnel skips)
    // is not the engine's double layer: only one the runs added counts.
    const doubled = (layers: readonly string[], before: readonly string[]): boolean =>
      ours(layers) > 1 && ours(layers) > ours(before);
    for (const [fn, config] of this.final) {
      const initial = this.initial.get(fn);
      if (doubled(layersOf(config), initial === undefined ? [] : layersOf(initial))) {
        this.add(5, fn, 'the final configuration carries two versions of our layer');
      }
    }
    for (const item of this.items.filter(isDecision)) {
      if (doubled(item.after?.layers ?? [], item.before?.layers ?? [])) {
        this.add(5, item.functionName, `${name(item)} records an after-image with two versions of our layer`);
      }
    }
    const image = (i: AuditRecord['before']): string =>
      JSON.stringify([i?.layers ?? [], i?.variableNames ?? [], i?.variableHashes ?? {}, i?.handler ?? null]);
    const functions = new Set(this.items.filter(isDecision).map((i) => i.functionName));
    for (const fn of functions) {
      let previous: AuditRecord | undefined;
      let rolledBack = false;
      let skipped = false;
      for (const item of this.itemsOf(fn)) {
        if (item.outcome === 'ROLLED_BACK') rolledBack = true;
        if (item.outcome === 'SKIPPED') skipped = true;
        if (item.outcome !== 'PROTECTED') continue;
        if (previous !== undefined && previous.runId !== item.runId && !rolledBack) {
          const known = previous.after !== undefined && item.before !== undefined;
          if ((known && image(previous.after) === image(item.before)) || (!known && skipped)) {
            this.add(5, fn, `${name(item)} protects again what ${name(previous)} left unchanged (flip-flop)`);
          }
        }
        previous = item;
        rolledBack = false;
        skipped = false;
      }
    }
    this.messagesConverge();
  }

  private messagesConverge(): void {
    const attribute = (m: MessageRecord, key: string): string | undefined => m.attributes[key]?.StringValue;
    const reasonsOf = (m: MessageRecord): string => {
      try {
        const body = JSON.parse(m.message) as { reasons?: Array<{ code?: string }> };
        return (body.reasons ?? []).map((r) => r.code ?? '').join(',');
      } catch {
        return m.subject ?? '';
      }
    };
    const notifications = new Map(this.input.runs.map((r) => [r.runId, r.notifications ?? 'changed']));
    const decisions = this.input.messages.filter((m) => attribute(m, 'kind') === 'decision');
    const last = new Map<string, { key: string; noticeId: string | undefined }>();
    for (const message of decisions) {
      const fn = attribute(message, 'functionName');
      if (fn === undefined) continue;
      const key = `${attribute(message, 'outcome') ?? ''}|${reasonsOf(message)}`;
      const noticeId = attribute(message, 'noticeId');
      const mode = message.runId === null ? 'changed' : (notifications.get(message.runId) ?? 'changed');
      const previous = last.get(fn);
      // The same notice again (same noticeId: a run died between its publish and its sent mark) is an at-least-once
      // redelivery the subscriber can drop, not a repeated skip message about a new decision.
      const redelivered = noticeId !== undefined && previous?.noticeId === noticeId;
      if (attribute(message, 'outcome') === 'SKIPPED' && mode === 'changed' && previous?.key === key && !redelivered) {
        this.add(5, fn, `skip message (${reasonsOf(message)}) published again in run ${String(message.runId)}`);
      }
      last.set(fn, { key, noticeId });
    }
    for (const item of this.items.filter(isFinal)) {
      if (item.outcome !== 'SKIPPED' && item.outcome !== 'FAILED') continue;
      const mode = notifications.get(item.runId) ?? 'changed';
      if (item.repeat === true && mode === 'changed' && item.outcome === 'SKIPPED') continue;
      // A reconciled SKIPPED without reasons ("the run ended before the change was applied: nothing was changed")
      // failed no gate: nothing to tell the owner (the next run decides afresh; the operator's alarm says a run died).
      if (item.outcome === 'SKIPPED' && item.reconciled === true && (item.reasons ?? []).length === 0) continue;
      const position = this.runPosition(item.runId);
      const sent = decisions.some(
        (m) =>
          attribute(m, 'functionName') === item.functionName &&
          attribute(m, 'outcome') === item.outcome &&
          (m.runId === item.runId || (m.runId !== null && this.runPosition(m.runId) > position)),
      );
      const owed = (this.input.outbox ?? []).includes(item.runId);
      if (!sent && !owed) this.add(5, item.functionName, `${name(item)} was never published (lost message)`);
    }
  }

  invariant6(): void {
    const needles = this.input.secrets
      .filter((s) => s.length >= 4)
      .flatMap((secret, index) => {
        const escaped = JSON.stringify(secret).slice(1, -1);
        const sha = createHash('sha256').update(secret, 'utf8');
        const digest = sha.digest();
        return [
          { text: secret, form: 'value' },
          { text: escaped, form: 'JSON-escaped value' },
          { text: Buffer.from(secret, 'utf8').toString('base64'), form: 'base64 of the value' },
          { text: digest.toString('hex'), form: 'SHA-256 (hex)' },
          { text: digest.toString('base64'), form: 'SHA-256 (base64)' },
        ].map((n) => ({ ...n, index }));
      });
    const unique = needles.filter((n, i) => needles.findIndex((m) => m.text === n.text) === i);
    /** One violation per place and secret: the first form found. */
    const scan = (texts: readonly string[], where: string, fn: string | undefined): void => {
      const reported = new Set<number>();
      for (const text of texts) {
        const lower = text.toLowerCase();
        for (const needle of unique) {
          if (reported.has(needle.index)) continue;
          const found = needle.form === 'SHA-256 (hex)' ? lower.includes(needle.text) : text.includes(needle.text);
          if (!found) continue;
          reported.add(needle.index);
          this.add(6, fn, `secret #${needle.index + 1} (${needle.form}) appears in ${where}`);
        }
      }
    };
    this.input.logs.forEach((line, i) => scan([line], `log line ${i + 1}`, undefined));
    for (const item of this.input.auditItems) scan(strings(item), name(item), item.functionName);
    this.input.messages.forEach((m, i) =>
      scan(
        [m.subject ?? '', m.message, ...strings(m.attributes)],
        `SNS message ${i + 1} (run ${String(m.runId)})`,
        m.attributes['functionName']?.StringValue,
      ),
    );
  }
}

/** Every string in a JSON value (keys included), as stored: a value is looked for as it is, not re-escaped. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, v]) => [key, ...strings(v)]);
  }
  return [];
}

/** Checks the six invariants. See the module comment. */
export function checkInvariants(input: InvariantInput): InvariantReport {
  const checker = new Checker(input);
  checker.invariant1();
  checker.invariant2();
  checker.invariant3();
  checker.invariant4();
  checker.invariant5();
  checker.invariant6();
  return { checked: [1, 2, 3, 4, 5, 6], violations: checker.violations };
}
