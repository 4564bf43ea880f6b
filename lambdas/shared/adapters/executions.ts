/**
 * Whether a Step Functions execution still runs (states:DescribeExecution): start-run asks it of the execution that
 * holds the run lease, and takes the lease over at once when the holder has ended (issue 9: a killed run, or a run
 * whose finish-run could not release the lease, no longer blocks the next runs for the lease's two hours).
 */
import { DescribeExecutionCommand, ExecutionDoesNotExist } from '@aws-sdk/client-sfn';
import { sfn } from './clients';

export type ExecutionState =
  /** The execution was read (or does not exist: `status` 'DOES_NOT_EXIST'). */
  | { known: true; running: boolean; status: string }
  /** It could not be read (throttled, access denied, 5xx ...): the caller must assume it still runs. */
  | { known: false; error: string };

/** The state of one execution; never throws. */
export async function executionState(executionArn: string): Promise<ExecutionState> {
  try {
    const out = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    const status = out.status ?? 'UNKNOWN';
    // Anything but RUNNING has ended (SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE). A status this code
    // does not know is taken as running: the lease then expires on its own, the safe reading.
    const ended = ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE'].includes(status);
    return { known: true, running: !ended, status };
  } catch (error) {
    if (error instanceof ExecutionDoesNotExist) return { known: true, running: false, status: 'DOES_NOT_EXIST' };
    return { known: false, error: error instanceof Error ? error.name : 'Error' };
  }
}
