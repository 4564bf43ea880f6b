/**
 * Where the reviewing commands (report, history, export, coverage) read the audit trail from: ONE small adapter, so
 * that swapping the audit-store reader (e.g. one that expands compact repeats) is a change in this file only.
 *
 * - A deployed stack: the audit table named by `--audit-table`, or found in the CloudFormation outputs of `--stack`
 *   (default the app's stack name), read through lambdas/shared/adapters/audit-store.ts (`runItems`,
 *   `functionHistory`, `auditPages`). The runs, newest first, come from the state machine's executions (the run id
 *   is the execution name, lambdas/start-run) when the stack names it, else from a projected Scan of the table.
 * - A local run: `--local DIR`, the folder `local-run --out DIR` wrote (audit.jsonl, functions.json, versions.json),
 *   read line by line.
 *
 * Nothing here writes.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { StackOutputKey } from '../../lib/zero-impact-stack';
import { describeStackOutputs } from '../commands/stack';
import { ListExecutionsCommand, type ListExecutionsCommandOutput } from '@aws-sdk/client-sfn';
import {
  auditItemsByKey,
  auditPages,
  functionHistory,
  runItems,
  runIdsByScan,
} from '../../lambdas/shared/adapters/audit-store';
import { sfn } from '../../lambdas/shared/adapters/clients';
import { expandRepeats, repeatedKeys, withRepeatedChecks } from '../../lambdas/shared/domain/repeats';
import type { AuditItem } from '../../lambdas/shared/domain/types';
import { UsageError } from '../commands/common';

/** The app's stack name (bin/app.ts STACK_NAME; not imported, that would load the CDK into the CLI). */
export const DEFAULT_STACK_NAME = 'ZeroImpactProtect';

/** Run ids of `rollback` records (bin/commands/rollback.ts): operator actions, not runs of the job. */
export const ROLLBACK_RUN_PREFIX = 'rollback-';

/** What the reviewing commands read. */
export interface AuditSource {
  /** Where the items come from, for messages ("audit table X", "local run DIR"). */
  readonly label: string;
  /** The job's runs, newest first, at most `limit` (rollback records are not runs). */
  runIds(limit: number): Promise<string[]>;
  /** Every item a run wrote. */
  runItems(runId: string): Promise<AuditItem[]>;
  /** Every item of one function, oldest first. */
  functionHistory(functionName: string): Promise<AuditItem[]>;
  /** The items decided in [since, until), page by page (bounded memory: one page at a time). */
  pages(since: string, until: string | undefined): AsyncIterable<AuditItem[]>;
}

/** Where a deployed stack keeps its audit table and state machine. */
export interface StackTarget {
  auditTable: string;
  stateMachineArn?: string;
}

/** The flags every reviewing command takes to find its data. */
export interface SourceOptions {
  local?: string;
  stack?: string;
  auditTable?: string;
  stateMachineArn?: string;
}

const LOCAL_PAGE_ITEMS = 500;

/** The audit items of a local run's audit.jsonl, one line at a time. */
async function* localLines(file: string): AsyncGenerator<AuditItem> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let number = 0;
  for await (const line of lines) {
    number += 1;
    if (line.trim().length === 0) continue;
    let item: AuditItem;
    try {
      item = JSON.parse(line) as AuditItem;
    } catch {
      // Never echo the line: an edited file could hold anything.
      throw new UsageError(`${file}: line ${number} is not valid JSON`);
    }
    // local-run writes decisions expanded; a table export may hold compact repeats items (domain/repeats.ts).
    yield* expandRepeats([item]);
  }
}

function runStartOf(item: AuditItem): string {
  return item.sk.split('#')[0] ?? item.decidedAt;
}

/** Reads a local run's folder (`local-run --out DIR`). */
export function localSource(dir: string): AuditSource {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UsageError(`--local: ${dir} is not a folder (give the folder local-run --out DIR wrote)`);
  }
  const file = join(dir, 'audit.jsonl');
  if (!existsSync(file)) throw new UsageError(`--local: ${dir} has no audit.jsonl (written by local-run --out DIR)`);
  const filtered = async (keep: (item: AuditItem) => boolean): Promise<AuditItem[]> => {
    const found: AuditItem[] = [];
    for await (const item of localLines(file)) if (keep(item)) found.push(item);
    return found;
  };
  return {
    label: `local run ${dir}`,
    async runIds(limit) {
      const starts = new Map<string, string>();
      for await (const item of localLines(file)) {
        if (item.kind !== 'decision' || item.runId.startsWith(ROLLBACK_RUN_PREFIX)) continue;
        if (!starts.has(item.runId)) starts.set(item.runId, runStartOf(item));
      }
      return [...starts.entries()]
        .sort(([, a], [, b]) => b.localeCompare(a))
        .slice(0, limit)
        .map(([id]) => id);
    },
    async runItems(runId) {
      const items = await filtered((item) => item.runId === runId);
      const wanted = new Set(repeatedKeys(items).map((k) => `${k.functionName}|${k.sk}`));
      return withRepeatedChecks(items, await filtered((item) => wanted.has(`${item.functionName}|${item.sk}`)));
    },
    async functionHistory(functionName) {
      const items = (await filtered((item) => item.functionName === functionName)).sort((a, b) =>
        a.sk.localeCompare(b.sk),
      );
      return withRepeatedChecks(items, items);
    },
    async *pages(since, until) {
      let page: AuditItem[] = [];
      for await (const item of localLines(file)) {
        if (item.decidedAt < since || (until !== undefined && item.decidedAt >= until)) continue;
        page.push(item);
        if (page.length >= LOCAL_PAGE_ITEMS) {
          yield page;
          page = [];
        }
      }
      if (page.length > 0) yield page;
    },
  };
}

/** The run ids of the state machine's executions, newest first (ListExecutions lists newest first). */
async function executionNames(stateMachineArn: string, limit: number): Promise<string[]> {
  const names: string[] = [];
  let nextToken: string | undefined;
  do {
    const page: ListExecutionsCommandOutput = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn, maxResults: Math.min(limit, 1000), nextToken }),
    );
    for (const execution of page.executions ?? []) if (execution.name !== undefined) names.push(execution.name);
    nextToken = page.nextToken;
  } while (nextToken !== undefined && names.length < limit);
  return names.slice(0, limit);
}

/** Reads a deployed stack's audit table. */
export function stackSource(target: StackTarget): AuditSource {
  return {
    label: `audit table ${target.auditTable}`,
    async runIds(limit) {
      if (target.stateMachineArn !== undefined) return executionNames(target.stateMachineArn, limit);
      const runs = await runIdsByScan(target.auditTable);
      return runs
        .filter((run) => !run.runId.startsWith(ROLLBACK_RUN_PREFIX))
        .sort((a, b) => b.startedAt.localeCompare(a.startedAt))
        .slice(0, limit)
        .map((run) => run.runId);
    },
    async runItems(runId) {
      // Compact repeats (domain/repeats.ts) get the checks of the full item they repeat.
      const items = await runItems(target.auditTable, runId);
      return withRepeatedChecks(items, await auditItemsByKey(target.auditTable, repeatedKeys(items)));
    },
    async functionHistory(name) {
      const items = await functionHistory(target.auditTable, name);
      return withRepeatedChecks(items, items);
    },
    pages: (since, until) => auditPages(target.auditTable, since, until),
  };
}

/**
 * The audit table and state machine from the stack's outputs (`AuditTableName`, `StateMachineArn`: lib/zero-impact-stack.ts
 * STACK_OUTPUTS), read with the one DescribeStacks helper of the CLI (bin/commands/stack.ts).
 */
export function targetFromOutputs(stackName: string, outputs: Partial<Record<StackOutputKey, string>>): StackTarget {
  const auditTable = outputs.AuditTableName;
  if (auditTable === undefined) {
    throw new UsageError(
      `stack ${stackName} has no audit table output (AuditTableName): deploy the current version, or give --audit-table`,
    );
  }
  const stateMachineArn = outputs.StateMachineArn;
  return { auditTable, ...(stateMachineArn !== undefined ? { stateMachineArn } : {}) };
}

/** The source the flags name: --local DIR, else --audit-table, else the stack's outputs. */
export async function openSource(options: SourceOptions, defaultStack: string): Promise<AuditSource> {
  if (options.local !== undefined) {
    if (options.stack !== undefined || options.auditTable !== undefined) {
      throw new UsageError('give either --local DIR or --stack/--audit-table, not both');
    }
    return localSource(options.local);
  }
  if (options.auditTable !== undefined) {
    return stackSource({
      auditTable: options.auditTable,
      ...(options.stateMachineArn !== undefined ? { stateMachineArn: options.stateMachineArn } : {}),
    });
  }
  const stackName = options.stack ?? defaultStack;
  const target = targetFromOutputs(stackName, await describeStackOutputs(stackName));
  return stackSource(
    options.stateMachineArn !== undefined ? { ...target, stateMachineArn: options.stateMachineArn } : target,
  );
}
