import { describe, expect, it } from 'vitest';
import { formatPeers } from '../../src/cli/online.js';

const FP = 'ab'.repeat(32);

describe('vpnctl peers table', () => {
  it('shows state and, for down peers, why', () => {
    const text = formatPeers([
      { name: 'hq', fingerprint: FP, trust: 'pinned', address: '203.0.113.10:51820', connected: true, last_seen: '2026-11-22T03:00:00.000Z', direction: 'outbound' },
      { name: 'laptop', fingerprint: '', trust: 'unlearned', address: '', connected: false, last_seen: null, last_error: 'cannot connect to 198.51.100.4:51820: no answer within 5s' },
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+FINGERPRINT\s+TRUST\s+ADDRESS\s+STATE\s+LAST SEEN\s+LAST ERROR$/);
    expect(lines[1]).toMatch(/^hq\s+abababababababab…\s+pinned\s+203\.0\.113\.10:51820\s+connected \(outbound\)\s+2026-11-22T03:00:00\.000Z$/);
    expect(lines[2]).toMatch(/laptop\s+-\s+unlearned\s+-\s+down\s+never\s+cannot connect to 198\.51\.100\.4:51820: no answer within 5s$/);
  });

  it('shows how each peer is trusted, and "-" when the daemon does not say', () => {
    const rows = formatPeers([
      { name: 'a', fingerprint: FP, trust: 'learned', address: 'a:1', connected: true, last_seen: null },
      { name: 'b', fingerprint: FP, trust: 'unknown', address: '', connected: true, last_seen: null, direction: 'inbound' },
      { name: 'c', fingerprint: FP, address: 'c:1', connected: true, last_seen: null },
    ]).split('\n');
    expect(rows[1]).toMatch(/^a\s+\S+\s+learned\s+a:1\s/);
    expect(rows[2]).toMatch(/^b\s+\S+\s+unknown\s+-\s+connected \(inbound\)/);
    expect(rows[3]).toMatch(/^c\s+\S+\s+-\s+c:1\s/);
  });

  it('leaves the error column out when nothing failed', () => {
    expect(formatPeers([{ name: 'hq', fingerprint: FP, address: 'x:1', connected: true, last_seen: null }]).split('\n')[0]).not.toContain('LAST ERROR');
    expect(formatPeers([])).toBe('no peers');
  });
});
