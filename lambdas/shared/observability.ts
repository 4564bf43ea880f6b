/**
 * Powertools logger and metrics, one instance each per container. Every log line carries the run id and, where
 * there is one, the function name (appendKeys in the handlers). Never log a variable value.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { Metrics } from '@aws-lambda-powertools/metrics';

export const logger = new Logger({ serviceName: process.env['POWERTOOLS_SERVICE_NAME'] ?? 'zero-impact-protect' });
export const metrics = new Metrics({
  namespace: process.env['POWERTOOLS_METRICS_NAMESPACE'] ?? 'ZeroImpactProtect',
  serviceName: process.env['POWERTOOLS_SERVICE_NAME'] ?? 'zero-impact-protect',
});

/**
 * Starts an invocation's logging: forgets the previous invocation's keys, adds the Lambda context (the engine
 * function's name, request id, cold start) and the invocation's keys (the run id, and the customer function's name
 * where one function is processed). Keys are reset at the start, never at the end, so invocations that share this
 * process (the local run executes parallel batches in one process) never strip each other's run id.
 */
export function startInvocation(keys: Record<string, string>, context?: Context): void {
  logger.resetKeys();
  if (context !== undefined) logger.addContext(context);
  logger.appendKeys(keys);
}
