/**
 * The CloudFormation template of the stack, synthesized in-process from a configuration exactly as `cdk synth`
 * builds it (bin/app.ts `createStack`), with bundling skipped (`aws:cdk:bundling-stacks: []`: the local run runs the
 * handler sources, not the bundles). The configuration's deploy-only rules (bin/app.ts `resolveConfig`: TW_POLICY
 * from SSM only) are not applied: the local run accepts literals.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { createStack, STACK_NAME } from '../bin/app';
import type { Config } from '../lib/config';
import type { CfnTemplate } from './asl-local';

export { STACK_NAME };

export function synthesizeTemplate(config: Config): CfnTemplate {
  const outdir = mkdtempSync(join(tmpdir(), 'zero-impact-synth-'));
  try {
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
    createStack(app, config);
    return app.synth().getStackByName(STACK_NAME).template as CfnTemplate;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
