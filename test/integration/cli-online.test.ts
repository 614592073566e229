import { describe, expect, it } from 'vitest';
import { ago, bytes, formatPeer, formatPeers } from '../../src/cli/online.js';

const FP = 'ab'.repeat(32);
const NOW = Date.parse('2026-11-22T03:00:42.000Z');

describe('vpnctl peers table', () => {
  it('shows address, endpoint, state with path, relative times, traffic and RTT, and for down peers why', () => {
    const text = formatPeers(
      [
        {
          name: 'hq', fingerprint: FP, trust: 'pinned', address: '203.0.113.10:51820', connected: true, last_seen: '2026-11-22T03:00:40.000Z',
          connected_since: '2026-11-22T02:57:42.000Z', direction: 'outbound', remote: '203.0.113.10:51820', path: 'direct', via: null,
          addresses: ['10.42.0.7'], rx_bytes: 1536, tx_bytes: 5 * 1024 * 1024, rtt_ms: 0.84,
        },
        {
          name: 'b', fingerprint: FP, trust: 'pinned', address: '', connected: true, last_seen: '2026-11-22T03:00:41.000Z',
          connected_since: '2026-11-22T01:00:00.000Z', direction: 'inbound', remote: 'via hq', path: 'relay', via: 'hq',
          addresses: ['10.42.0.9'], rx_bytes: 10, tx_bytes: 20, rtt_ms: 31.6,
        },
        { name: 'laptop', fingerprint: '', trust: 'unlearned', address: '', connected: false, last_seen: null, last_error: 'cannot connect to 198.51.100.4:51820: no answer within 5s' },
      ],
      NOW,
    );
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+ADDRESS\s+ENDPOINT\s+STATE\s+SINCE\s+LAST SEEN\s+RX\s+TX\s+RTT\s+TRUST\s+LAST ERROR$/);
    expect(lines[1]).toMatch(/^hq\s+10\.42\.0\.7\s+203\.0\.113\.10:51820\s+connected \(outbound\)\s+3m ago\s+2s ago\s+1\.5 KiB\s+5\.0 MiB\s+0\.8 ms\s+pinned$/);
    expect(lines[2]).toMatch(/^b\s+10\.42\.0\.9\s+via hq\s+connected \(inbound, via hq\)\s+2h ago\s+1s ago\s+10 B\s+20 B\s+32 ms\s+pinned$/);
    expect(lines[3]).toMatch(/^laptop\s+-\s+-\s+down\s+-\s+never\s+-\s+-\s+-\s+unlearned\s+cannot connect to 198\.51\.100\.4:51820: no answer within 5s$/);
  });

  it('leaves the error column out when nothing failed', () => {
    expect(formatPeers([{ name: 'hq', fingerprint: FP, address: 'x:1', connected: true, last_seen: null }]).split('\n')[0]).not.toContain('LAST ERROR');
    expect(formatPeers([])).toBe('no peers');
  });

  it('peers NAME: every field, one per line', () => {
    const text = formatPeer({ name: 'laptop', fingerprint: FP, trust: 'pinned', address: '', connected: false, last_seen: '2026-11-22T03:00:00.000Z', last_error: 'no path' }, NOW);
    expect(text.split('\n')).toEqual([
      'name             laptop',
      `fingerprint      ${FP}`,
      'trust            pinned',
      'addresses        -',
      'configured at    - (found through common peers)',
      'state            down',
      'endpoint         -',
      'connected since  -',
      'last seen        2026-11-22T03:00:00.000Z (42s ago)',
      'rx / tx          - / -',
      'rtt              -',
      'last error       no path',
    ]);
  });
});

describe('relative times and byte counts', () => {
  it('reads like wg show', () => {
    const at = (s: number) => new Date(NOW - s * 1000).toISOString();
    expect([0, 1, 119, 120, 7199, 7200, 172_799, 172_800].map((s) => ago(at(s), NOW))).toEqual(['now', '1s ago', '119s ago', '2m ago', '120m ago', '2h ago', '48h ago', '2d ago']);
    expect(ago(new Date(NOW + 5000).toISOString(), NOW)).toBe('now');
    expect([null, 0, 1023, 1024, 10 * 1024, 1536 * 1024 * 1024].map(bytes)).toEqual(['-', '0 B', '1023 B', '1.0 KiB', '10 KiB', '1.5 GiB']);
  });
});
