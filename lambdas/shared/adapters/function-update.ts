/**
 * Reading one function fresh and changing it safely: the Lambda I/O shared by the protect handler and the rollback
 * command. Every change is sent with the RevisionId read just before (a deploy in between fails the precondition and
 * nothing changes), an update already in progress is retried a bounded number of times with exponential backoff and
 * full jitter, and the wait for `LastUpdateStatus` is bounded. Sleeps and jitter are injectable (tests never sleep).
 *
 * The configurations returned carry real variable values: callers keep them in memory only.
 */
import {
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  ListTagsCommand,
  UpdateFunctionConfigurationCommand,
  type UpdateFunctionConfigurationCommandInput,
} from '@aws-sdk/client-lambda';
import type { FunctionConfiguration } from '../domain/types';
import { fullJitter, retry } from '../retry';
import { lambda } from './clients';
import { systemClock } from './rate-limiter';

export interface FreshFunction {
  configuration: FunctionConfiguration;
  /** Reserved concurrency; null when none is reserved. */
  reservedConcurrency: number | null;
}

export interface Pacing {
  /** Waits before each control-plane call (the run's rate limiter). @default - no wait */
  beforeCall?: () => Promise<void>;
  /** @default - the engine's one clock (systemClock.sleep) */
  sleep?: (ms: number) => Promise<void>;
  /** In [0, 1). @default Math.random */
  random?: () => number;
}

/** Waits on the engine's one injectable clock (rate-limiter.ts), never on a timer of its own. */
export const defaultSleep = (ms: number): Promise<void> => systemClock.sleep(ms);

/** One line for an AWS error: its name and message (never a stack). */
export function awsMessage(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : '';
}

/** True for Lambda's answer about a function that does not exist (any more). */
export function isNotFound(error: unknown): boolean {
  return errorName(error) === 'ResourceNotFoundException';
}

/**
 * GetFunction: configuration (with State, LastUpdateStatus, RevisionId) and reserved concurrency. Throws.
 * Its `Tags` are ignored: AWS returns them only to a caller allowed `lambda:ListTags` (Lambda API reference,
 * GetFunction: "Tags ... only returned if you have permission for ListTags"), so they are read with `readTags`.
 */
export async function readFunction(functionName: string, pacing: Pacing = {}): Promise<FreshFunction> {
  await pacing.beforeCall?.();
  const out = await lambda.send(new GetFunctionCommand({ FunctionName: functionName }));
  if (out.Configuration === undefined) throw new Error(`GetFunction returned no configuration for ${functionName}`);
  return {
    configuration: out.Configuration as FunctionConfiguration,
    reservedConcurrency: out.Concurrency?.ReservedConcurrentExecutions ?? null,
  };
}

/** ListTags: the function's tags as they are now (a control-plane call). Throws. */
export async function readTags(functionArn: string, pacing: Pacing = {}): Promise<Record<string, string>> {
  await pacing.beforeCall?.();
  const out = await lambda.send(new ListTagsCommand({ Resource: functionArn }));
  return { ...(out.Tags ?? {}) };
}

/** The fields this project ever changes. */
export interface ConfigurationChange {
  Layers?: string[];
  Environment?: { Variables: Record<string, string> };
  Handler?: string;
}

/**
 * `uncertain`: the SDK sent a request more than once (its retries of network errors and 5xx). An earlier send may
 * have been applied and its answer lost, so "not accepted" does not prove that nothing changed.
 */
export type UpdateResult =
  | { status: 'accepted'; attempts: number }
  | { status: 'precondition-failed'; message: string; uncertain: boolean }
  | { status: 'conflict'; attempts: number; message: string; uncertain: boolean }
  | { status: 'rejected'; message: string; uncertain: boolean; errorName: string }
  | { status: 'deleted'; message: string };

/** True when the SDK sent the request more than once before this error. */
function resent(error: unknown): boolean {
  const metadata: unknown = error instanceof Error ? (error as { $metadata?: unknown }).$metadata : undefined;
  const attempts: unknown =
    metadata !== null && typeof metadata === 'object' ? (metadata as { attempts?: unknown }).attempts : undefined;
  return typeof attempts === 'number' && attempts > 1;
}

/** Retries of ResourceConflictException after the first attempt. */
export const CONFLICT_RETRIES = 4;
export const CONFLICT_BASE_DELAY_MS = 1_000;

/**
 * UpdateFunctionConfiguration with `RevisionId` as a precondition. Sends only the fields of `change`.
 * Never throws: every AWS error becomes a result.
 */
export async function updateConfiguration(
  functionName: string,
  change: ConfigurationChange,
  revisionId: string,
  pacing: Pacing = {},
): Promise<UpdateResult> {
  const sleep = pacing.sleep ?? defaultSleep;
  const random = pacing.random ?? Math.random;
  const input: UpdateFunctionConfigurationCommandInput = { FunctionName: functionName, RevisionId: revisionId };
  if (change.Layers !== undefined) input.Layers = [...change.Layers];
  if (change.Environment !== undefined) input.Environment = { Variables: { ...change.Environment.Variables } };
  if (change.Handler !== undefined) input.Handler = change.Handler;

  let uncertain = false;
  let attempts = 0;
  try {
    await retry(
      async (attempt) => {
        attempts = attempt;
        await pacing.beforeCall?.();
        await lambda.send(new UpdateFunctionConfigurationCommand(input));
      },
      {
        attempts: 1 + CONFLICT_RETRIES,
        retryable: (error) => errorName(error) === 'ResourceConflictException',
        // Exponential backoff with full jitter: 0..1 s, 0..2 s, 0..4 s, 0..8 s.
        delayMs: fullJitter(CONFLICT_BASE_DELAY_MS, random),
        onRetry: (_attempt, error) => {
          uncertain ||= resent(error);
        },
        sleep,
      },
    );
    return { status: 'accepted', attempts };
  } catch (error) {
    uncertain ||= resent(error);
    const name = errorName(error);
    const message = awsMessage(error);
    if (name === 'PreconditionFailedException') return { status: 'precondition-failed', message, uncertain };
    if (isNotFound(error)) return { status: 'deleted', message };
    if (name !== 'ResourceConflictException') return { status: 'rejected', message, uncertain, errorName: name };
    return { status: 'conflict', attempts, message, uncertain };
  }
}

export type WaitResult =
  | { status: 'Successful'; configuration: FunctionConfiguration; polls: number }
  | { status: 'Failed'; reason: string; configuration: FunctionConfiguration; polls: number }
  | { status: 'timeout'; configuration: FunctionConfiguration | null; polls: number; lastError: string | null }
  | { status: 'deleted'; polls: number };

export const MAX_POLLS = 60;
/** Delay before poll i: 1 s growing by half each time, capped at 5 s: at most about 290 s over 60 polls. */
export function pollDelayMs(poll: number): number {
  return Math.min(5_000, Math.round(1_000 * 1.5 ** poll));
}

/**
 * Polls GetFunctionConfiguration until LastUpdateStatus leaves InProgress, at most MAX_POLLS times.
 * A failed poll counts as a poll (it is retried); the wait never throws. A function that no longer exists ends the
 * wait at once (`deleted`): there is nothing left to wait for.
 */
export async function waitForUpdate(
  functionName: string,
  pacing: Pacing = {},
  maxPolls = MAX_POLLS,
): Promise<WaitResult> {
  const sleep = pacing.sleep ?? defaultSleep;
  let last: FunctionConfiguration | null = null;
  let lastError: string | null = null;
  for (let poll = 0; poll < maxPolls; poll++) {
    await sleep(pollDelayMs(poll));
    try {
      await pacing.beforeCall?.();
      const { $metadata: _metadata, ...read } = await lambda.send(
        new GetFunctionConfigurationCommand({ FunctionName: functionName }),
      );
      const out = read as FunctionConfiguration;
      last = out;
      lastError = null;
      if (out.LastUpdateStatus === 'Successful') return { status: 'Successful', configuration: out, polls: poll + 1 };
      if (out.LastUpdateStatus === 'Failed') {
        return {
          status: 'Failed',
          reason: out.LastUpdateStatusReason ?? 'no reason given',
          configuration: out,
          polls: poll + 1,
        };
      }
    } catch (error) {
      if (isNotFound(error)) return { status: 'deleted', polls: poll + 1 };
      lastError = awsMessage(error);
    }
  }
  return { status: 'timeout', configuration: last, polls: maxPolls, lastError };
}
