/**
 * The engine's own CloudWatch metrics: the one place their names live. Handlers emit them with Powertools Metrics
 * (EMF, in the log stream, no PutMetricData call); the alarms and the dashboard read them.
 *
 * Powertools adds the default dimension `service` (= POWERTOOLS_SERVICE_NAME) to every metric, so every metric below
 * carries `service` plus the dimension named here, and the alarms match exactly that set.
 */

/** CloudWatch namespace (POWERTOOLS_METRICS_NAMESPACE). */
export const METRICS_NAMESPACE = 'ZeroImpactProtect';
/** Powertools service name (POWERTOOLS_SERVICE_NAME), emitted as the `service` dimension. */
export const SERVICE_NAME = 'zero-impact-protect';

export const ENGINE_METRICS = {
  /** Decisions of one run by outcome: unit Count, dimension `Outcome` (PROTECTED, SKIPPED, FAILED ...). finish-run. */
  decisions: { name: 'Decisions', dimension: 'Outcome' },
  /** Skips of one run by reason code: unit Count, dimension `Reason` (every reason of a SKIPPED decision). finish-run. */
  skips: { name: 'Skips', dimension: 'Reason' },
  /** 1 when the run's Defender layer check failed (protect mode), else 0: unit Count, no extra dimension. take-inventory. */
  layerCheckFailed: { name: 'LayerCheckFailed' },
  /**
   * Protected functions whose LastUpdateStatus (or State) is Failed: unit Count, no extra dimension. assess-batch,
   * every run until the function is healthy again (warning PROTECTION_UNHEALTHY on its ALREADY_PROTECTED record).
   */
  protectionUnhealthy: { name: 'ProtectionUnhealthy' },
  /**
   * 1 per failed settle-the-past task of start-run (replay of unrecorded decisions, reconciliation of pending
   * changes), or a LEASE_TAKEN_OVER that could not be recorded: unit Count, no extra dimension. start-run (issue 9).
   */
  runMaintenanceFailed: { name: 'RunMaintenanceFailed' },
  /** 1 when finish-run could not release the lease after its retries: unit Count, no extra dimension. finish-run. */
  leaseNotReleased: { name: 'LeaseNotReleased' },
  /** PENDING changes of earlier runs completed by reconciliation: unit Count, no extra dimension. start-run. */
  reconciledChanges: { name: 'ReconciledChanges' },
} as const;
