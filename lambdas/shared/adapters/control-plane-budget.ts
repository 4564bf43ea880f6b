/**
 * One Lambda control-plane budget for the whole run (issue 11): every worker and step of a run (take-inventory, the
 * Distributed Map's assess-batch workers, each protect-function invocation) takes its calls from the same
 * `rates.controlPlanePerSecond`, so their sum can never exceed it, and a caller that is alone gets all of it.
 *
 * **The algorithm: a shared GCRA schedule in the state table.** One item, `pk = BUDGET#lambda-control-plane`, holds
 * `tat`, the first free slot (milliseconds since the epoch, on the engine's clock `systemClock`). Slots are
 * `spacingMs` apart. An invocation reserves a few consecutive slots with one conditional UpdateItem, then waits on
 * the clock for each slot before its call:
 * - the schedule is busy (`tat >= now`): `ADD tat :span` with `tat >= :now`; the answer's new `tat` minus the span
 *   is the first slot reserved. ADD is atomic, so concurrent reservations never conflict with one another;
 * - the schedule is idle (`tat < now`, or no item): `SET tat = :now + :span` with `attribute_not_exists(tat) OR
 *   tat < :now`; the first slot is now.
 * A refused condition only means the other case holds (someone else reserved meanwhile, or the schedule went idle):
 * the other form is tried, so a reservation costs one write, two when the schedule changed state in between.
 * *Source:* DynamoDB Developer Guide, "Condition expressions" (the condition is evaluated against the item before
 * the update) and "Update expressions: ADD" (atomic increment of a number; ADD and SET in one expression).
 *
 * **Why the peak holds in every one-second window, not only in aligned ones.** Every call happens at its slot or
 * later, slots are `spacingMs` apart and `limit * spacingMs = 1000 + BUDGET_GUARD_MS`. A slot is used only if its
 * caller reaches it within `BUDGET_GUARD_MS / 2` (a slot already past is dropped, never used late: a late call
 * would bunch with the next slots), and the call is assumed to reach Lambda within another `BUDGET_GUARD_MS / 2`.
 * Then calls `limit` apart in the schedule are at least 1000 ms apart: no window of one second holds more than
 * `limit` calls. The guard also covers clock skew between Lambda containers (NTP keeps it to milliseconds). The
 * price is a sustained rate of `1000 / spacingMs` (4.76/s for a limit of 5).
 *
 * **No burst.** Slots are spaced from the first; an idle schedule gives its first slot at once to one caller only
 * (the SET is conditional), so invocations starting together queue up instead of bursting.
 *
 * **Cost.** Each reservation is one UpdateItem on a ~60-byte item (1 WRU, two when the condition was refused), for
 * up to `MAX_SLOTS_PER_RESERVATION` calls. The first reservation of an invocation takes 1 slot, then 2, then 4 (an
 * invocation that makes one or two calls does not strand slots nobody else may use); concurrent callers of one
 * invocation waiting together get as many as are waiting, up to the maximum. (Starting small again after a slot
 * passed unused was tried: on the local run's virtual clock, where any sleeper moves time for all, it tripled the
 * writes for no fewer dropped slots.)
 *
 * **Table unreachable.** If a reservation fails for any other reason than its condition (the table down, access
 * denied, throttled past the SDK's retries), the invocation falls back for the rest of its life to a local share of
 * `limit / workers`, without burst and starting empty (its first call waits one interval, so invocations that
 * follow one another on a worker cannot double up at the boundary). The next invocation tries the table again.
 * While some invocations use the table and others the local share, the sum is bounded by `limit * (1 + 1 / workers)`
 * at worst; when the table is down for all of them, by `limit`.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { BUDGET_GUARD_MS, budgetKeys, slotSpacingMs } from '../domain/budget';
import { logger } from '../observability';
import { dynamodb } from './clients';

export { BUDGET_GUARD_MS, budgetKeys, slotSpacingMs };

/** The most slots one reservation takes (each reservation is one DynamoDB write). */
export const MAX_SLOTS_PER_RESERVATION = 4;
/** Attempts of one reservation before giving up on the table (each refused attempt means another caller won). */
const MAX_RESERVATION_ATTEMPTS = 8;
/** The schedule item outlives its last slot by this long (seconds), then TTL removes it. */
const BUDGET_ITEM_TTL_SECONDS = 3600;

/** The clock the budget waits on (structurally `Clock` of rate-limiter.ts, which imports this module). */
export interface BudgetClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface SlotReservation {
  /** The caller's clock when it asks (ms). No slot reserved is before it. */
  nowMs: number;
  /** Slots wanted (consecutive, `spacingMs` apart). */
  count: number;
  spacingMs: number;
}

/** Where the shared schedule lives. */
export interface SlotStore {
  /** Reserves the slots; answers the first one (ms). Throws when the store cannot be reached. */
  reserve(request: SlotReservation): Promise<number>;
}

/** The schedule item in the state table (see the module comment). */
export class DynamoSlotStore implements SlotStore {
  /** The last `tat` this store saw: picks which of the two updates to try first. */
  private seenTat = Number.NEGATIVE_INFINITY;
  /** When this store last found the schedule busy (another caller ahead of it). */
  private busySeenAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly tableName: string,
    private readonly key: string = budgetKeys.controlPlane(),
  ) {}

  async reserve(request: SlotReservation): Promise<number> {
    const span = request.count * request.spacingMs;
    const now = Math.ceil(request.nowMs);
    // Busy if this store's own slots reach now, or it found others ahead within the last second (with several
    // callers the schedule rarely goes idle in between); a wrong guess costs one refused write.
    let busy = this.seenTat >= now || now - this.busySeenAt < 1000;
    for (let attempt = 0; attempt < MAX_RESERVATION_ATTEMPTS; attempt += 1) {
      try {
        const first = busy ? await this.extend(now, span) : await this.restart(now, span);
        if (busy) this.busySeenAt = now;
        this.seenTat = first + span;
        return first;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        if (!busy) this.busySeenAt = now;
        busy = !busy;
      }
    }
    throw new Error(`the control-plane budget item stayed contended for ${MAX_RESERVATION_ATTEMPTS} attempts`);
  }

  private expiresAt(tat: number): number {
    return Math.ceil(tat / 1000) + BUDGET_ITEM_TTL_SECONDS;
  }

  /** The schedule is busy: the slots after its last one. */
  private async extend(now: number, span: number): Promise<number> {
    const out = await dynamodb.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: this.key },
        UpdateExpression: 'ADD tat :span SET expiresAt = :exp',
        ConditionExpression: 'tat >= :now',
        ExpressionAttributeValues: { ':span': span, ':now': now, ':exp': this.expiresAt(now + span) },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    const tat = out?.Attributes?.['tat'];
    if (typeof tat !== 'number' || !Number.isFinite(tat)) {
      throw new Error('the control-plane budget update answered no schedule');
    }
    return tat - span;
  }

  /** The schedule is idle: it starts again now. */
  private async restart(now: number, span: number): Promise<number> {
    await dynamodb.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: this.key },
        UpdateExpression: 'SET tat = :tat, expiresAt = :exp',
        ConditionExpression: 'attribute_not_exists(tat) OR tat < :now',
        ExpressionAttributeValues: { ':tat': now + span, ':now': now, ':exp': this.expiresAt(now + span) },
      }),
    );
    return now;
  }
}

export interface SharedBudgetProps {
  /** The run's limit, calls per second (`rates.controlPlanePerSecond`). */
  limitPerSecond: number;
  /** Invocations at once (the fallback's share is `limitPerSecond / workers`). */
  workers: number;
  store: SlotStore;
  clock: BudgetClock;
}

/** One invocation's view of the shared schedule (see the module comment). */
export class SharedBudget {
  readonly spacingMs: number;
  private readonly fallbackSpacingMs: number;
  /** Slots reserved and not used yet, ascending. */
  private readonly slots: number[] = [];
  private refill: Promise<void> | undefined;
  private nextCount = 1;
  private waiting = 0;
  /** The local share's next slot once the table could not be reached (undefined: the table works). */
  private fallbackTat: number | undefined;
  private reservationCount = 0;
  private droppedCount = 0;

  constructor(private readonly props: SharedBudgetProps) {
    if (!(props.limitPerSecond > 0) || !Number.isFinite(props.limitPerSecond)) {
      throw new RangeError(`limitPerSecond must be a positive number, got ${props.limitPerSecond}`);
    }
    this.spacingMs = slotSpacingMs(props.limitPerSecond);
    this.fallbackSpacingMs = Math.ceil((1000 * Math.max(1, props.workers)) / props.limitPerSecond);
  }

  /** Reservations written to the store (DynamoDB writes, not counting refused conditions). */
  get reservations(): number {
    return this.reservationCount;
  }

  /** Slots reserved but passed before their caller could use them. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** True once the table could not be reached: the rest of this invocation uses the local share. */
  get fallenBack(): boolean {
    return this.fallbackTat !== undefined;
  }

  /** Waits until the caller may send one control-plane call. */
  async take(): Promise<void> {
    const { clock } = this.props;
    const tolerance = BUDGET_GUARD_MS / 2;
    for (;;) {
      if (this.fallbackTat !== undefined) return this.takeLocal();
      const now = clock.now();
      while (this.slots.length > 0 && (this.slots[0] as number) < now - tolerance) {
        this.slots.shift();
        this.dropSlot();
      }
      const slot = this.slots.shift();
      if (slot === undefined) {
        await this.reserve();
        continue;
      }
      if (slot > now) await clock.sleep(slot - now);
      // The clock may have moved past the slot while this caller slept (another sleeper woke it later): using it
      // now would bunch this call with the next slots.
      if (clock.now() <= slot + tolerance) return;
      this.dropSlot();
    }
  }

  /** A slot passed unused (its caller was busy elsewhere, or the clock moved past it while the caller slept). */
  private dropSlot(): void {
    this.droppedCount += 1;
  }

  private async reserve(): Promise<void> {
    this.waiting += 1;
    try {
      // One reservation at a time per invocation; callers that wait together share it.
      while (this.refill !== undefined) await this.refill;
      if (this.slots.length > 0 || this.fallbackTat !== undefined) return;
      this.refill = this.reserveNow().finally(() => {
        this.refill = undefined;
      });
      await this.refill;
    } finally {
      this.waiting -= 1;
    }
  }

  private async reserveNow(): Promise<void> {
    const { clock, store } = this.props;
    const count = Math.min(MAX_SLOTS_PER_RESERVATION, Math.max(this.nextCount, this.waiting));
    try {
      const first = await store.reserve({ nowMs: clock.now(), count, spacingMs: this.spacingMs });
      this.reservationCount += 1;
      for (let i = 0; i < count; i += 1) this.slots.push(first + i * this.spacingMs);
      this.nextCount = Math.min(MAX_SLOTS_PER_RESERVATION, this.nextCount * 2);
    } catch (error) {
      // Starts empty: the first local call waits one interval (see the module comment).
      this.fallbackTat = clock.now() + this.fallbackSpacingMs;
      logger.warn('control-plane budget unreachable; this invocation paces itself at its local share', {
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        sharePerSecond: 1000 / this.fallbackSpacingMs,
      });
    }
  }

  /** GCRA at the local share, no burst. */
  private async takeLocal(): Promise<void> {
    const { clock } = this.props;
    const now = clock.now();
    const slot = Math.max(this.fallbackTat ?? now, now);
    this.fallbackTat = slot + this.fallbackSpacingMs;
    if (slot > now) await clock.sleep(Math.ceil(slot - now));
  }
}
