/**
 * The durable fallback of record-failure (issue 9): decisions that could not be written to the audit table are left
 * as one JSON object per function under the run's S3 prefix, `runs/<runId>/unrecorded/<function>.json` (names, codes
 * and details only: never a variable value), and the next run replays them (lambdas/shared/replay.ts).
 * The bucket's lifecycle rule for `runs/` expires them after 7 days, like the run's inventory.
 */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { isRecord, type Mode } from '../domain/types';
import { s3 } from './clients';

/** The prefix every run's objects live under (lib/constructs/inventory-bucket.ts INVENTORY_PREFIX). */
export const RUNS_PREFIX = 'runs/';
/** The infix of the fallback objects within a run's prefix. */
export const UNRECORDED_INFIX = '/unrecorded/';

/** One decision record-failure could not write (or, with `recorded`, wrote but could not publish). */
export interface UnrecordedDecision {
  functionName: string;
  functionArn: string | null;
  runId: string;
  /** The run's startedAt: the decision's deterministic sort key. */
  runStartedAt: string;
  decidedAt: string;
  mode: Mode;
  outcome: 'FAILED';
  detail: string;
  owner?: string;
  /** The function came from a protect request: its run may hold a PENDING whose images the FAILED must carry. */
  afterProtect: boolean;
  /** True when the audit item was written and only its notification failed: the replay publishes it. */
  recorded?: boolean;
}

export function unrecordedKey(runId: string, functionName: string): string {
  return `${RUNS_PREFIX}${runId}${UNRECORDED_INFIX}${encodeURIComponent(functionName)}.json`;
}

/** Parses a fallback object; undefined when it is not one (it is then left alone). */
export function parseUnrecorded(text: string): UnrecordedDecision | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  const strings = ['functionName', 'runId', 'runStartedAt', 'decidedAt', 'detail'] as const;
  if (!strings.every((key) => typeof value[key] === 'string' && (value[key] as string).length > 0)) return undefined;
  if (value['outcome'] !== 'FAILED' || (value['mode'] !== 'protect' && value['mode'] !== 'dry-run')) return undefined;
  if (value['functionArn'] !== null && typeof value['functionArn'] !== 'string') return undefined;
  const out: UnrecordedDecision = {
    functionName: value['functionName'] as string,
    functionArn: value['functionArn'] as string | null,
    runId: value['runId'] as string,
    runStartedAt: value['runStartedAt'] as string,
    decidedAt: value['decidedAt'] as string,
    mode: value['mode'],
    outcome: 'FAILED',
    detail: value['detail'] as string,
    afterProtect: value['afterProtect'] === true,
  };
  if (typeof value['owner'] === 'string') out.owner = value['owner'];
  if (value['recorded'] === true) out.recorded = true;
  return out;
}

export async function putUnrecorded(bucket: string, decision: UnrecordedDecision): Promise<string> {
  const key = unrecordedKey(decision.runId, decision.functionName);
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: JSON.stringify(decision),
      ContentType: 'application/json',
    }),
  );
  return key;
}

/**
 * The keys of every fallback object under `runs/`, at most `maxPages` ListObjectsV2 pages of 1000 keys (the prefix
 * holds a few objects per run and expires after 7 days, so one page is the usual case).
 */
export async function listUnrecorded(
  bucket: string,
  maxPages: number,
): Promise<{ keys: string[]; truncated: boolean }> {
  const keys: string[] = [];
  let ContinuationToken: string | undefined;
  let pages = 0;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: RUNS_PREFIX, ContinuationToken }));
    for (const object of page.Contents ?? []) {
      if (typeof object.Key === 'string' && object.Key.includes(UNRECORDED_INFIX)) keys.push(object.Key);
    }
    ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    pages += 1;
  } while (ContinuationToken !== undefined && pages < maxPages);
  return { keys, truncated: ContinuationToken !== undefined };
}

export async function getUnrecorded(bucket: string, key: string): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await out.Body?.transformToString()) ?? '';
}

export async function deleteUnrecorded(bucket: string, key: string): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}
