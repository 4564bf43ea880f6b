/**
 * Powertools logger and metrics, one instance each per container. Every log line carries the run id and, where
 * there is one, the function name (appendKeys in the handlers). Never log a variable value.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';

export const logger = new Logger({ serviceName: process.env['POWERTOOLS_SERVICE_NAME'] ?? 'zero-impact-protect' });
export const metrics = new Metrics({
  namespace: process.env['POWERTOOLS_METRICS_NAMESPACE'] ?? 'ZeroImpactProtect',
  serviceName: process.env['POWERTOOLS_SERVICE_NAME'] ?? 'zero-impact-protect',
});
