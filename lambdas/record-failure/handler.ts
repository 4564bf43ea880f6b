/**
 * Record failure (the Catch target of Assess batch and Protect function): every function of the failed batch or
 * protect request is recorded FAILED with the error's name and a trimmed, scrubbed cause, and published to the skip
 * topic. The Cause of a Lambda task failure is a JSON string of the Lambda error; only its errorType and
 * errorMessage are kept (never the stack trace), quoted text is cut out and the rest truncated.
 */
import type { Context } from 'aws-lambda';
import { putAuditItem } from '../shared/adapters/audit-store';
import { publishNotice } from '../shared/adapters/notifier';
import { systemClock } from '../shared/adapters/rate-limiter';
import { decisionItem } from '../shared/domain/audit';
import { decisionNotice } from '../shared/domain/notice';
import type { InventoryItem, ProtectRequest } from '../shared/domain/types';
import { logger, startInvocation } from '../shared/observability';
import { emitMetric, errorSummary, failureDetail, recordSettings } from '../shared/recording';
import { runtime } from '../shared/runtime';

export interface RecordFailureInput {
  runId: string;
  startedAt: string;
  items: Array<InventoryItem | ProtectRequest>;
  error?: { Error?: string; Cause?: string };
}

interface Target {
  functionName: string;
  functionArn: string | null;
  owner?: string;
}

function targetOf(item: InventoryItem | ProtectRequest, ownerTagKey: string): Target | undefined {
  if (item === null || typeof item !== 'object') return undefined;
  if ('facts' in item && typeof item.functionName === 'string') {
    const owner = item.facts?.tags?.[ownerTagKey];
    return {
      functionName: item.functionName,
      functionArn: item.functionArn ?? null,
      ...(owner !== undefined ? { owner } : {}),
    };
  }
  if ('configuration' in item && typeof item.configuration?.FunctionName === 'string') {
    const owner = item.tags?.[ownerTagKey];
    return {
      functionName: item.configuration.FunctionName,
      functionArn: item.configuration.FunctionArn ?? null,
      ...(owner !== undefined ? { owner } : {}),
    };
  }
  return undefined;
}

export const handler = async (event: RecordFailureInput, context?: Context): Promise<{ recorded: number }> => {
  const rt = runtime();
  const settings = recordSettings(rt);
  startInvocation({ runId: event.runId }, context);
  const detail = failureDetail(event.error);
  const items = Array.isArray(event.items) ? event.items : [];
  let recorded = 0;
  for (const raw of items) {
    const target = targetOf(raw, rt.config.audit.ownerTagKey);
    if (target === undefined) {
      logger.error('failed item without a function name; not recorded', { error: detail });
      continue;
    }
    const item = decisionItem(
      {
        functionName: target.functionName,
        functionArn: target.functionArn,
        runId: event.runId,
        decidedAt: new Date(systemClock.now()).toISOString(),
        mode: rt.config.mode,
        outcome: 'FAILED',
        reasons: [],
        warnings: [],
        checks: [],
        detail,
        ...(target.owner !== undefined ? { owner: target.owner } : {}),
      },
      settings,
    );
    try {
      await putAuditItem(rt.auditTableName, item);
      recorded += 1;
      logger.error('function recorded FAILED', { functionName: target.functionName, error: detail });
    } catch (error) {
      emitMetric('AuditWriteFailed', 1);
      logger.error('FAILED decision could not be recorded', {
        functionName: target.functionName,
        error: errorSummary(error),
      });
    }
    try {
      await publishNotice(rt.skipTopicArn, decisionNotice(item));
    } catch (error) {
      emitMetric('NotificationsFailed', 1);
      logger.error('failure notification failed', { functionName: target.functionName, error: errorSummary(error) });
    }
  }
  return { recorded };
};
