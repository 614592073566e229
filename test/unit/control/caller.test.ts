// Who may ask the control socket what (caller.ts): the rule, the group lookup, and SO_PEERCRED
// on a real Unix socket through the TUN addon.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupId, kernelCallerUid, mayRun } from '../../../src/control/caller.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('mayRun', () => {
  it('lets a socket_group member read, and only root or the daemon user change the daemon', () => {
    for (const cmd of ['status', 'peers', 'routes']) expect(mayRun(cmd, 1000, 0, true), cmd).toBe(true);
    expect(mayRun('reload', 1000, 0, true)).toBe(false);
    expect(mayRun('goodbye', 1000, 0, true)).toBe(false);
    expect(mayRun('goodbye', null, 0, true)).toBe(false);
    expect(mayRun('reload', 0, 0, true)).toBe(true);
    expect(mayRun('reload', 1000, 1000, true)).toBe(true);
    // Without a group the 0600 socket already let in only its owner.
    expect(mayRun('reload', null, 0, false)).toBe(true);
  });
});

describe('groupId', () => {
  it('reads /etc/group lines, and takes a number as it is', () => {
    const etc = 'root:x:0:\nvibepn:x:998:alice,bob\nbroken:x:\n';
    expect(groupId('vibepn', etc)).toBe(998);
    expect(groupId('root', etc)).toBe(0);
    expect(groupId('1234', '')).toBe(1234);
    expect(groupId('broken', etc)).toBeNull();
    expect(groupId('nobody-here', etc)).toBeNull();
  });
});

describe('kernelCallerUid', () => {
  it('reads the uid of the process at the other end (SO_PEERCRED)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vibepn-caller-'));
    const path = join(dir, 's.sock');
    const callerUid = kernelCallerUid();
    const seen = new Promise<number | null>((resolve) => {
      const server = net.createServer((socket) => {
        resolve(callerUid(socket));
        socket.destroy();
        server.close();
      });
      server.listen(path, () => net.connect(path).on('error', () => {}));
    });
    expect(await seen).toBe(process.getuid!());
  });

  it('knows nobody without the addon (nobody is taken for root)', () => {
    const callerUid = kernelCallerUid(() => {
      throw new Error('not built');
    });
    expect(callerUid({} as net.Socket)).toBeNull();
  });
});
