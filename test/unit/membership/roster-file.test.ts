// The roster file: what a restarted node admits and dials from before any gossip. Round trip
// on a real directory (mode 0600), damaged files refused with the fix, serialized saves.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROSTER_FILE_MODE, RosterFile, RosterFileError, parseRosterFile, renderRosterFile } from '../../../src/membership/roster-file.js';
import { MemoryFs } from './fixtures.js';

const A = Uint8Array.of(0x56, 0x50, 0x4e, 0x52, 1, 2, 3);
const B = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vibepn-roster-file-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('RosterFile on disk', () => {
  it('saves and loads the records byte for byte, 0600', async () => {
    const path = join(dir, 'roster.json');
    const file = new RosterFile(path);
    await file.save(() => [A, B]);
    expect(statSync(path).mode & 0o777).toBe(ROSTER_FILE_MODE);
    expect(await new RosterFile(path).load()).toEqual([A, B]);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ version: 1, records: [Buffer.from(A).toString('base64'), Buffer.from(B).toString('base64')] });
  });

  it('a missing file is an empty roster', async () => {
    expect(await new RosterFile(join(dir, 'none.json')).load()).toEqual([]);
  });

  it.each([
    ['not JSON', '{"version":1,', /not JSON/],
    ['a list', '[]', /expected a JSON object/],
    ['another version', '{"version":2,"records":[]}', /version 2 is not 1/],
    ['records not a list', '{"version":1,"records":"x"}', /records is not a list/],
    ['a record not base64', '{"version":1,"records":["AAAA","!!"]}', /records\[1\] is not base64 text/],
    ['an empty record', '{"version":1,"records":[""]}', /records\[0\] is not base64 text/],
  ])('a damaged file (%s) is a RosterFileError naming the path, the problem and the fix', async (_what, text, problem) => {
    const path = join(dir, 'roster.json');
    writeFileSync(path, text);
    const error = await new RosterFile(path).load().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RosterFileError);
    const message = (error as Error).message;
    expect(message).toContain(path);
    expect(message).toMatch(problem);
    expect(message).toMatch(/delete it: the node fetches the records again from its peers/);
  });

  it('an unreadable file is a RosterFileError naming the path', async () => {
    // A directory where the file should be: read fails with EISDIR, not ENOENT.
    const error = await new RosterFile(dir).load().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RosterFileError);
    expect((error as Error).message).toContain(`cannot read the roster ${dir}`);
  });
});

describe('parseRosterFile / renderRosterFile', () => {
  it('round-trip any list of records', () => {
    for (const records of [[], [A], [A, B, A]]) expect(parseRosterFile(renderRosterFile(records))).toEqual(records);
  });
});

describe('RosterFile saves', () => {
  it('are serialized and coalesced: saves queued behind a write become one, which reads the records when it starts', async () => {
    const fs = new MemoryFs();
    const file = new RosterFile('/r.json', fs);
    let state: Uint8Array[] = [A];
    let release!: () => void;
    fs.hold = new Promise((resolve) => (release = resolve));
    const first = file.save(() => state);
    // The first write is under way (held); the next two queue behind it.
    await new Promise((resolve) => setImmediate(resolve));
    state = [A, B];
    const second = file.save(() => state);
    state = [B];
    const third = file.save(() => state);
    await new Promise((resolve) => setImmediate(resolve));
    expect(fs.writes).toHaveLength(1);
    fs.hold = undefined;
    release();
    await Promise.all([first, second, third]);
    // The two queued saves are one write, of the state when its turn came: never an older one after a newer.
    expect(second).toBe(third);
    expect(fs.writes.map((w) => parseRosterFile(w))).toEqual([[A], [B]]);
    expect(parseRosterFile(fs.text!)).toEqual([B]);
  });

  it('a failed write is reported to its caller and does not wedge the next one', async () => {
    const fs = new MemoryFs();
    const file = new RosterFile('/r.json', fs);
    fs.failNext = new Error('ENOSPC: no space left on device');
    await expect(file.save(() => [A])).rejects.toThrow(/ENOSPC/);
    await file.save(() => [B]);
    expect(await file.load()).toEqual([B]);
  });
});
