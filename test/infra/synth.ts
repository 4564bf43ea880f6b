/**
 * Test helpers: synthesize the stack in-process without bundling (esbuild is skipped for every stack), once per
 * configuration, and read the parts of the template the tests assert on.
 */
import { CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';
import { buildApp } from '../../bin/app';
import { ZeroImpactStack } from '../../lib/zero-impact-stack';

/** A parsed state machine definition (the parts the tests read). */
export interface StateJson {
  Type: string;
  Next?: string;
  End?: boolean;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  InputPath?: string;
  OutputPath?: string;
  ResultPath?: string | null;
  ItemsPath?: string;
  ItemSelector?: Record<string, unknown>;
  MaxConcurrency?: number;
  Retry?: Array<Record<string, unknown>>;
  Catch?: Array<{ ErrorEquals: string[]; ResultPath?: string; Next: string }>;
  ItemProcessor?: { ProcessorConfig: Record<string, unknown>; StartAt: string; States: Record<string, StateJson> };
  ItemReader?: Record<string, unknown>;
  ItemBatcher?: Record<string, unknown>;
  ToleratedFailurePercentage?: number;
  Choices?: Array<Record<string, unknown>>;
  Default?: string;
  [key: string]: unknown;
}
export interface DefinitionJson {
  StartAt: string;
  TimeoutSeconds?: number;
  States: Record<string, StateJson>;
}

export interface Synthesized {
  stack: ZeroImpactStack;
  template: Template;
}

const cache = new Map<string, Synthesized>();

/** Synthesizes the stack with `overrides` deep-merged over cdk.json's configuration (cached per overrides). */
export function synth(overrides: Record<string, unknown> = {}): Synthesized {
  const key = JSON.stringify(overrides);
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const { stack } = buildApp({ context: { 'aws:cdk:bundling-stacks': [], zeroImpact: key } });
  const result = { stack, template: Template.fromStack(stack) };
  cache.set(key, result);
  return result;
}

/** The logical id of a construct (its CloudFormation resource). */
export function logicalId(stack: Stack, construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return stack.resolve(element.logicalId) as string;
}

/** The rendered definition, with every Ref / Fn::GetAtt replaced by `<LogicalId>` or `<LogicalId.Attr>`. */
export function definition({ stack, template }: Synthesized): DefinitionJson {
  const id = logicalId(stack, stack.stateMachine);
  const resource = template.toJSON().Resources[id] as { Properties: { DefinitionString: unknown } };
  const joined = resource.Properties.DefinitionString as { 'Fn::Join': [string, unknown[]] };
  const text = joined['Fn::Join'][1]
    .map((part) => {
      if (typeof part === 'string') return part;
      const token = part as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
      if (token.Ref !== undefined) return `<${token.Ref}>`;
      if (token['Fn::GetAtt'] !== undefined) return `<${token['Fn::GetAtt'].join('.')}>`;
      throw new Error(`unexpected token in definition: ${JSON.stringify(part)}`);
    })
    .join('');
  return JSON.parse(text) as DefinitionJson;
}

/** Every state of the definition, nested ones included, by name. */
export function allStates(def: { States: Record<string, StateJson> }): Record<string, StateJson> {
  const states: Record<string, StateJson> = {};
  for (const [name, state] of Object.entries(def.States)) {
    states[name] = state;
    if (state.ItemProcessor !== undefined) Object.assign(states, allStates(state.ItemProcessor));
  }
  return states;
}

/**
 * The statements of the IAM policies attached to `role`, exactly as in the template: its default policy first,
 * then any policy of its own (start-run's LeaseTakeoverPolicy), by logical id.
 */
export function statementsOf({ stack, template }: Synthesized, role: iam.IRole): unknown[] {
  const roleId = logicalId(stack, role);
  const policies = Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([, policy]) => {
      const roles = (policy as { Properties: { Roles: unknown[] } }).Properties.Roles;
      return JSON.stringify(roles) === JSON.stringify([{ Ref: roleId }]);
    })
    .sort(
      ([a], [b]) => Number(b.includes('DefaultPolicy')) - Number(a.includes('DefaultPolicy')) || a.localeCompare(b),
    );
  if (policies.length === 0) throw new Error(`${roleId}: no policy attached`);
  return policies.flatMap(
    ([, policy]) =>
      (policy as { Properties: { PolicyDocument: { Statement: unknown[] } } }).Properties.PolicyDocument.Statement,
  );
}

/** The template form of a token (`{ "Fn::GetAtt": [...] }`, `{ "Ref": ... }`, `{ "Fn::Join": ... }`). */
export function resolved(stack: Stack, value: unknown): unknown {
  return stack.resolve(value);
}
