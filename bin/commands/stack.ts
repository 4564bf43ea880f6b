/**
 * `--stack NAME`: the commands find the deployed stack's tables and keys in its CloudFormation outputs
 * (lib/zero-impact-stack.ts STACK_OUTPUTS) with DescribeStacks (CloudFormation API Reference, DescribeStacks:
 * `Stacks[0].Outputs[]` of `{ OutputKey, OutputValue }`; a stack that does not exist is a `ValidationError`
 * "Stack with id NAME does not exist"). Precedence for each value: its own flag, its environment variable, then the
 * stack's output. `--stack` defaults to ZERO_IMPACT_STACK, then the app's stack name.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { Option, type Command } from 'commander';
import type { StackOutputKey } from '../../lib/zero-impact-stack';
import { STACK_NAME } from '../stack-name';
import { UsageError } from './common';

export { STACK_NAME };

let client: CloudFormationClient | undefined;

/** The outputs of a stack, by key; throws the SDK's error (ValidationError when the stack does not exist). */
export async function describeStackOutputs(stackName: string): Promise<Partial<Record<StackOutputKey, string>>> {
  client ??= new CloudFormationClient({ retryMode: 'adaptive', maxAttempts: 5 });
  const out = await client.send(new DescribeStacksCommand({ StackName: stackName }));
  const stack = out.Stacks?.[0];
  const outputs: Partial<Record<StackOutputKey, string>> = {};
  for (const output of stack?.Outputs ?? []) {
    if (output.OutputKey !== undefined && output.OutputValue !== undefined) {
      outputs[output.OutputKey as StackOutputKey] = output.OutputValue;
    }
  }
  return outputs;
}

/** Adds `--stack NAME` (env ZERO_IMPACT_STACK, default the app's stack name) to a command. */
export function stackOption(command: Command): Command {
  return command.addOption(
    new Option(
      '--stack <name>',
      `read tables and keys not given from this stack's outputs (default: ${STACK_NAME})`,
    ).env('ZERO_IMPACT_STACK'),
  );
}

function errorName(error: unknown): string {
  const e = error as { name?: unknown; message?: unknown };
  const name = typeof e.name === 'string' ? e.name : 'Error';
  return typeof e.message === 'string' && e.message.length > 0 ? `${name}: ${e.message}` : name;
}

/**
 * The outputs named in `needed` that the flags left open, from the stack. With an explicit --stack (or
 * ZERO_IMPACT_STACK) a stack that cannot be read is a UsageError (exit 2); with the default name it is not an error:
 * the caller then asks for the flag it misses, as before there were stack outputs.
 */
export async function outputsFor(
  command: string,
  stack: string | undefined,
  needed: ReadonlyArray<StackOutputKey>,
): Promise<Partial<Record<StackOutputKey, string>>> {
  if (needed.length === 0) return {};
  const name = stack ?? STACK_NAME;
  try {
    const outputs = await describeStackOutputs(name);
    const missing = needed.filter((key) => outputs[key] === undefined);
    if (missing.length > 0 && stack !== undefined) {
      throw new UsageError(
        `${command}: --stack ${name}: the stack has no output ${missing.join(', ')} (deployed before issue 13? deploy it again)`,
      );
    }
    return outputs;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    if (stack !== undefined)
      throw new UsageError(`${command}: --stack ${name}: cannot read the stack (${errorName(error)})`);
    return {};
  }
}
