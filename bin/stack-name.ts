/** The stack's name (bin/app.ts builds it; the commands' `--stack` defaults to it). Kept here so that the command
 * line does not load the CDK to know it. */
export const STACK_NAME = 'ZeroImpactProtect';
