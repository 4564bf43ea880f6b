/**
 * Throttles and peak concurrency for many functions per CloudWatch GetMetricData call.
 *
 * "A GetMetricData operation that does not include a query can retrieve as many as 500 different metrics in a
 * single request" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html), so
 * one call covers 250 functions (two queries each):
 * - `Throttles`, Sum, one period as long as the lookback (`funnel.throttleLookbackHours`); every returned value is
 *   summed, so a period split by CloudWatch's alignment is still counted whole;
 * - `ConcurrentExecutions`, Maximum, hourly periods; the peak is the maximum of the periods that overlap the last
 *   hour (conservative: a longer window can only make the peak larger).
 * Namespace AWS/Lambda, dimension FunctionName (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html).
 *
 * No datapoints means the metric was 0 (CloudWatch stores nothing for a function that was never throttled). A query
 * whose final StatusCode is not `Complete` (InternalError, Forbidden, or PartialData left over), a query missing from
 * the answer, or a call that fails after the SDK's retries leaves that function's fact missing: the funnel then
 * skips with FACTS_MISSING. Never fail open.
 */
import { paginateGetMetricData, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { cloudwatch } from './clients';
import { ownInput } from './paging';

/** GetMetricData's limit on queries per call. */
export const MAX_QUERIES_PER_CALL = 500;
/** Two queries per function. */
export const FUNCTIONS_PER_CALL = MAX_QUERIES_PER_CALL / 2;

const HOUR_SECONDS = 3600;

export interface FunctionMetrics {
  /** Sum of Throttles over the lookback; undefined when it could not be read. */
  throttles?: number;
  /** Maximum ConcurrentExecutions over the last hour; undefined when it could not be read. */
  peakConcurrency?: number;
}

export interface MetricsRequest {
  functionNames: readonly string[];
  lookbackHours: number;
  /** The caller's clock, milliseconds since the epoch. */
  now: number;
}

export interface MetricsResult {
  byFunction: Map<string, FunctionMetrics>;
  /** GetMetricData calls made (pages included). */
  calls: number;
  /** Error names of calls that failed (their functions' facts are missing). */
  errors: string[];
}

function metricQuery(id: string, functionName: string, metric: string, stat: string, period: number) {
  return {
    Id: id,
    MetricStat: {
      Metric: {
        Namespace: 'AWS/Lambda',
        MetricName: metric,
        Dimensions: [{ Name: 'FunctionName', Value: functionName }],
      },
      Period: period,
      Stat: stat,
    },
    ReturnData: true,
  } satisfies MetricDataQuery;
}

interface Series {
  values: number[];
  timestamps: number[];
  status?: string;
}

/** Reads both metrics for every named function, 250 functions per call. Never throws. */
export async function functionMetrics(request: MetricsRequest): Promise<MetricsResult> {
  const byFunction = new Map<string, FunctionMetrics>();
  const errors: string[] = [];
  let calls = 0;
  const names = [...new Set(request.functionNames)];
  const endMs = Math.floor(request.now / 60_000) * 60_000;
  const lookbackSeconds = request.lookbackHours * HOUR_SECONDS;
  const startTime = new Date(endMs - lookbackSeconds * 1000);
  const endTime = new Date(endMs);
  const lastHourFrom = endMs - 2 * HOUR_SECONDS * 1000; // period starts after this overlap the last hour

  for (let offset = 0; offset < names.length; offset += FUNCTIONS_PER_CALL) {
    const chunk = names.slice(offset, offset + FUNCTIONS_PER_CALL);
    const queries = chunk.flatMap((name, i) => [
      metricQuery(`t${i}`, name, 'Throttles', 'Sum', lookbackSeconds),
      metricQuery(`c${i}`, name, 'ConcurrentExecutions', 'Maximum', HOUR_SECONDS),
    ]);
    const series = new Map<string, Series>();
    try {
      // Each page is counted as it is sent (a failed call counts too).
      const count = <C extends { input: object }>(command: C): C => {
        calls += 1;
        return ownInput(command);
      };
      const pages = paginateGetMetricData(
        { client: cloudwatch, withCommand: count },
        { MetricDataQueries: queries, StartTime: startTime, EndTime: endTime },
      );
      for await (const page of pages) {
        for (const result of page.MetricDataResults ?? []) {
          if (result.Id === undefined) continue;
          const s = series.get(result.Id) ?? { values: [], timestamps: [] };
          s.values.push(...(result.Values ?? []));
          s.timestamps.push(...(result.Timestamps ?? []).map((t) => new Date(t).getTime()));
          s.status = result.StatusCode;
          series.set(result.Id, s);
        }
      }
    } catch (error) {
      errors.push(error instanceof Error ? error.name : 'Error');
      for (const name of chunk) byFunction.set(name, {});
      continue;
    }
    chunk.forEach((name, i) => {
      const facts: FunctionMetrics = {};
      const throttles = series.get(`t${i}`);
      if (throttles?.status === 'Complete') facts.throttles = throttles.values.reduce((a, b) => a + b, 0);
      const concurrency = series.get(`c${i}`);
      if (concurrency?.status === 'Complete') {
        const recent = concurrency.values.filter((_, k) => {
          const at = concurrency.timestamps[k];
          return at === undefined || Number.isNaN(at) || at > lastHourFrom;
        });
        facts.peakConcurrency = recent.length > 0 ? Math.max(...recent) : 0;
      }
      byFunction.set(name, facts);
    });
  }
  return { byFunction, calls, errors };
}
