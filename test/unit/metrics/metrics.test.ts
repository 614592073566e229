import { describe, it, expect } from 'vitest';
import { Metrics } from '../../../src/metrics/metrics.js';
import { newForwardCounters, DROP_REASONS } from '../../../src/metrics/forward-counters.js';

/** The value of one series in a text exposition, or undefined if the series is absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('Metrics', () => {
  it('exposes every metric, with label values pre-initialised to 0', async () => {
    const metrics = new Metrics();
    const text = await metrics.render();

    expect(sample(text, 'vibepn_peer_connected')).toBe(0);
    expect(sample(text, 'vibepn_peer_configured')).toBe(0);
    expect(sample(text, 'vibepn_peer_connection_attempts_total')).toBe(0);
    expect(sample(text, 'vibepn_peer_protocol_violations_total')).toBe(0);
    for (const reason of ['unknown_fingerprint', 'tofu_mismatch', 'pin_mismatch', 'cert_expired', 'cert_invalid', 'duplicate']) {
      expect(sample(text, `vibepn_peer_handshakes_rejected_total{reason="${reason}"}`), reason).toBe(0);
    }
    expect(sample(text, 'vibepn_peer_connection_failures_total{reason="timeout"}')).toBe(0);
    for (const type of ['hello', 'announce', 'withdraw', 'keepalive', 'goodbye', 'unknown']) {
      for (const direction of ['in', 'out']) {
        expect(sample(text, `vibepn_control_messages_total{type="${type}",direction="${direction}"}`), type).toBe(0);
      }
    }
    expect(sample(text, 'vibepn_routes_rejected_total{network="",reason="unknown_network"}')).toBe(0);
    for (const reason of DROP_REASONS) {
      expect(sample(text, `vibepn_forward_drops_total{network="",reason="${reason}"}`), reason).toBe(0);
    }
    expect(text).toContain('# TYPE vibepn_routes gauge');
    expect(text).toContain('# TYPE vibepn_forward_packets_total counter');
    expect(text).toContain('# TYPE vibepn_forward_bytes_total counter');
    // Process metrics from collectDefaultMetrics, in this instance's own registry.
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_heap_size_used_bytes');
    expect(metrics.contentType).toMatch(/^text\/plain/);
  });

  it('typed helpers move the right series', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const routeCounts = new Map([['corp', 5]]);
    metrics.observe({ peers: () => ({ connected: 2, configured: 3 }), routeCounts: () => routeCounts });
    metrics.connectionAttempt();
    metrics.connectionAttempt();
    metrics.connectionFailure('timeout');
    metrics.handshakeRejected('tofu_mismatch');
    metrics.protocolViolation();
    metrics.controlMessage('hello', 'in');
    metrics.controlMessage('keepalive', 'out');
    metrics.controlMessage('keepalive', 'out');
    metrics.declareNetwork('corp');
    metrics.routeRejected('corp', 'outside_policy');
    metrics.routeRejected('made-up-by-peer', 'unknown_network');

    const text = await metrics.render();
    expect(sample(text, 'vibepn_peer_connected')).toBe(2);
    expect(sample(text, 'vibepn_peer_configured')).toBe(3);
    expect(sample(text, 'vibepn_peer_connection_attempts_total')).toBe(2);
    expect(sample(text, 'vibepn_peer_connection_failures_total{reason="timeout"}')).toBe(1);
    expect(sample(text, 'vibepn_peer_handshakes_rejected_total{reason="tofu_mismatch"}')).toBe(1);
    expect(sample(text, 'vibepn_peer_handshakes_rejected_total{reason="pin_mismatch"}')).toBe(0);
    expect(sample(text, 'vibepn_peer_protocol_violations_total')).toBe(1);
    expect(sample(text, 'vibepn_control_messages_total{type="hello",direction="in"}')).toBe(1);
    expect(sample(text, 'vibepn_control_messages_total{type="keepalive",direction="out"}')).toBe(2);
    expect(sample(text, 'vibepn_routes{network="corp"}')).toBe(5);
    expect(sample(text, 'vibepn_routes_rejected_total{network="corp",reason="outside_policy"}')).toBe(1);
    expect(sample(text, 'vibepn_routes_rejected_total{network="corp",reason="peer_not_in_network"}')).toBe(0);
    // A network name a peer invented never becomes a label value.
    expect(sample(text, 'vibepn_routes_rejected_total{network="",reason="unknown_network"}')).toBe(1);
    expect(text).not.toContain('made-up-by-peer');
    expect(text).not.toContain('process_cpu');
  });

  it('reads forward counters live at scrape time', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const corp = newForwardCounters();
    metrics.registerForwardSource('corp', corp);
    let text = await metrics.render();
    expect(sample(text, 'vibepn_forward_packets_total{network="corp",direction="in"}')).toBe(0);
    expect(sample(text, 'vibepn_forward_drops_total{network="corp",reason="spoofed"}')).toBe(0);

    corp.packetsIn += 3;
    corp.bytesIn += 300;
    corp.packetsOut += 1;
    corp.bytesOut += 60;
    corp.drops.no_route += 2;
    metrics.unattributedForward.drops.unknown_network += 4;
    text = await metrics.render();
    expect(sample(text, 'vibepn_forward_packets_total{network="corp",direction="in"}')).toBe(3);
    expect(sample(text, 'vibepn_forward_packets_total{network="corp",direction="out"}')).toBe(1);
    expect(sample(text, 'vibepn_forward_bytes_total{network="corp",direction="in"}')).toBe(300);
    expect(sample(text, 'vibepn_forward_bytes_total{network="corp",direction="out"}')).toBe(60);
    expect(sample(text, 'vibepn_forward_drops_total{network="corp",reason="no_route"}')).toBe(2);
    expect(sample(text, 'vibepn_forward_drops_total{network="",reason="unknown_network"}')).toBe(4);

    corp.packetsIn += 1;
    text = await metrics.render();
    expect(sample(text, 'vibepn_forward_packets_total{network="corp",direction="in"}')).toBe(4);
  });

  it('keeps forward totals monotonic across unregister and register', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const first = newForwardCounters();
    metrics.registerForwardSource('corp', first);
    first.packetsIn = 10;
    first.drops.queue_full = 2;
    metrics.unregisterForwardSource('corp');
    first.packetsIn = 99; // counted after removal: must not show up
    let text = await metrics.render();
    expect(sample(text, 'vibepn_forward_packets_total{network="corp",direction="in"}')).toBe(10);

    // Network re-added by a reload with fresh counters: totals continue from 10, not from 0.
    const second = newForwardCounters();
    second.packetsIn = 5;
    metrics.registerForwardSource('corp', second);
    text = await metrics.render();
    expect(sample(text, 'vibepn_forward_packets_total{network="corp",direction="in"}')).toBe(15);
    expect(sample(text, 'vibepn_forward_drops_total{network="corp",reason="queue_full"}')).toBe(2);

    // The same object registered again is not counted twice.
    metrics.unregisterForwardSource('corp');
    metrics.registerForwardSource('corp', second);
    second.packetsIn = 6;
    text = await metrics.render();
    expect(sample(text, 'vibepn_forward_packets_total{network="corp",direction="in"}')).toBe(16);

    // A source that resets itself still never makes the total go down.
    second.packetsIn = 1;
    text = await metrics.render();
    expect(sample(text, 'vibepn_forward_packets_total{network="corp",direction="in"}')).toBe(17);
  });

  it('per-peer bytes by peer name, at most 256 series of peers, the rest under (other)', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const peers = Array.from({ length: 300 }, (_, i) => ({ peer: `p${i}`, rx: i, tx: 2 * i }));
    metrics.observe({ peers: () => ({ connected: 300, configured: 300 }), routeCounts: () => new Map(), peerTraffic: () => peers });
    const text = await metrics.render();
    expect(text).toContain('vibepn_peer_bytes_total{peer="p1",direction="in"} 1');
    expect(text).toContain('vibepn_peer_bytes_total{peer="p255",direction="out"} 510');
    expect(text).not.toContain('peer="p256"');
    // 256 + … + 299 in, twice that out.
    const rest = peers.slice(256).reduce((sum, p) => sum + p.rx, 0);
    expect(text).toContain(`vibepn_peer_bytes_total{peer="(other)",direction="in"} ${rest}`);
    expect(text).toContain(`vibepn_peer_bytes_total{peer="(other)",direction="out"} ${2 * rest}`);
  });

  it('two instances share no state', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.connectionAttempt();
    a.observe({ peers: () => ({ connected: 0, configured: 0 }), routeCounts: () => new Map([['corp', 7]]) });
    a.registerForwardSource('corp', { ...newForwardCounters(), packetsOut: 9 });
    const textA = await a.render();
    const textB = await b.render();
    expect(sample(textA, 'vibepn_peer_connection_attempts_total')).toBe(1);
    expect(sample(textB, 'vibepn_peer_connection_attempts_total')).toBe(0);
    expect(sample(textA, 'vibepn_routes{network="corp"}')).toBe(7);
    expect(textB).not.toContain('network="corp"');
    expect(sample(textA, 'vibepn_forward_packets_total{network="corp",direction="out"}')).toBe(9);
  });
});
