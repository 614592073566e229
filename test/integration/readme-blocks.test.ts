// The README's "two daemons by hand" block, run as pasted (in a temporary directory instead of
// /tmp/v, with `vpn` and `vpnctl` on PATH as npm install -g puts them): it must work start to end.
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { VPN, VPNCTL } from '../helpers/cli-run.js';

const README = resolve(import.meta.dirname, '../../README.md');
let dir: string | undefined;

afterEach(() => {
  spawnSync('sh', ['-c', `pkill -f ${JSON.stringify(dir ?? 'none')} || true`]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The first ```sh block after `heading`. */
function blockAfter(heading: string): string {
  const text = readFileSync(README, 'utf8');
  const from = text.indexOf(heading);
  expect(from, `README has no '${heading}'`).toBeGreaterThanOrEqual(0);
  const start = text.indexOf('```sh\n', from) + 6;
  return text.slice(start, text.indexOf('\n```', start));
}

describe('README blocks', () => {
  it('"Running two daemons by hand" works as pasted', () => {
    dir = mkdtempSync(join(tmpdir(), 'vibepn-readme-'));
    const bin = join(dir, 'bin');
    spawnSync('mkdir', ['-p', bin]);
    for (const [name, script] of [['vpn', VPN], ['vpnctl', VPNCTL]] as const) {
      writeFileSync(join(bin, name), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(script)} "$@"\n`);
      chmodSync(join(bin, name), 0o755);
    }
    const block = blockAfter('## Running two daemons by hand').replaceAll('/tmp/v', join(dir, 'v'));
    const run = spawnSync('bash', ['-e', '-c', block], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, VIBEPN_SOCKET: '' } });
    expect(run.status, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^b +10\.42\.0\.\d+ +127\.0\.0\.1:\d+ +connected \((outbound|inbound)\)/m);
    expect(run.stdout).toMatch(/^corp +10\.42\.0\.\d+\/32 +b \(/m);
    expect(run.stdout).toMatch(/^vibepn_peer_connected 1$/m);
  });
});
