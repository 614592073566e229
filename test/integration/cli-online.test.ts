import { describe, expect, it } from 'vitest';
import { formatPeers } from '../../src/cli/online.js';

const FP = 'ab'.repeat(32);

describe('vpnctl peers table', () => {
  it('shows state and, for down peers, why', () => {
    const text = formatPeers([
      { name: 'hq', fingerprint: FP, address: '203.0.113.10:51820', connected: true, last_seen: '2026-11-22T03:00:00.000Z', direction: 'outbound' },
      { name: 'laptop', fingerprint: '', address: '', connected: false, last_seen: null, last_error: 'cannot connect to 198.51.100.4:51820: no answer within 5s' },
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+FINGERPRINT\s+ADDRESS\s+STATE\s+LAST SEEN\s+LAST ERROR$/);
    expect(lines[1]).toContain('connected (outbound)');
    expect(lines[1]).toContain('abababababababab…');
    expect(lines[2]).toMatch(/laptop\s+-\s+-\s+down\s+never\s+cannot connect to 198\.51\.100\.4:51820: no answer within 5s$/);
  });

  it('leaves the error column out when nothing failed', () => {
    expect(formatPeers([{ name: 'hq', fingerprint: FP, address: 'x:1', connected: true, last_seen: null }]).split('\n')[0]).not.toContain('LAST ERROR');
    expect(formatPeers([])).toBe('no peers');
  });
});
