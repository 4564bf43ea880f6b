/**
 * The configuration schema, for the CDK app and everything outside lambdas/: it lives with the domain
 * (lambdas/shared/domain/config.ts), which the Lambdas and lib/ both import, so the two folders never depend on each
 * other in a cycle. Re-exported here so that `lib/config` imports keep working.
 */
export * from '../lambdas/shared/domain/config';
