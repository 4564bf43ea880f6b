/** `--local DIR`: a command acts on the account and tables `local-run --keep DIR` kept (local/kept-session.ts). */
import { KeptSessionError, withKeptSession } from '../../local/kept-session';
import { UsageError } from './common';

export async function onKeptSession(
  command: string,
  dir: string,
  body: (environment: Record<string, string>) => Promise<number>,
): Promise<number> {
  try {
    return await withKeptSession(dir, body);
  } catch (error) {
    if (error instanceof KeptSessionError) throw new UsageError(`${command}: --local: ${error.message}`);
    throw error;
  }
}
