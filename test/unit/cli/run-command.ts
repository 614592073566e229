// Runs a vpnctl command in-process, as cmd/vpnctl.ts's main() would: lines recorded instead of
// printed, and the thrown error turned into its exit code (2 usage, 1 failure). For commands the
// tests reach before cmd/vpnctl.ts dispatches them, and for speed.
import { UsageError } from '../../../src/cli/args.js';
import type { Output } from '../../../src/cli/output.js';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export type Command = (argv: string[], out: Output) => Promise<unknown>;

export async function runCommand(command: Command, argv: string[]): Promise<Ran> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const out: Output = { stdout: (line) => stdout.push(`${line}\n`), stderr: (line) => stderr.push(`${line}\n`) };
  let code = 0;
  try {
    const result = await command(argv, out);
    if (typeof result === 'number') code = result;
  } catch (error) {
    // main() prints every error as one line; only the exit code tells a usage error apart.
    out.stderr(`vpnctl: ${(error as Error).message}`);
    code = error instanceof UsageError ? 2 : 1;
  }
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}
