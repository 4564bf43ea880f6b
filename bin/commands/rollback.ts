// Placeholder until the command is implemented.
export async function run(_argv: string[]): Promise<number> {
  console.error('zero-impact rollback: not implemented yet');
  return 2;
}
