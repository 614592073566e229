import { describe, expect, it } from 'vitest';
import { KernelRoutes } from '../../../src/forward/kernel-routes.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { formatPrefix, parseCidr, type Prefix } from '../../../src/netgraph/addr.js';
import { MemoryTun } from '../../../src/tun/memory.js';
import { ipBytes } from '../../helpers/bytes.js';

function prefix(text: string): Prefix {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.prefix;
}

const prefixes = (...texts: string[]): Prefix[] => texts.map(prefix);

/** A MemoryTun that logs every route call and can be told to fail some. */
class FlakyTun extends MemoryTun {
  readonly calls: string[] = [];
  failAdd = new Set<string>();
  failRemove = new Set<string>();

  constructor() {
    super({ name: 'vpn-corp', address: ipBytes('10.42.0.1'), prefixLength: 24, mtu: 1280 });
  }

  override addRoute(route: Prefix): void {
    const cidr = formatPrefix(route);
    this.calls.push(`add ${cidr}`);
    if (this.failAdd.has(cidr)) throw new Error('RTNETLINK answers: Network is unreachable');
    super.addRoute(route);
  }

  override removeRoute(route: Prefix): void {
    const cidr = formatPrefix(route);
    this.calls.push(`remove ${cidr}`);
    if (this.failRemove.has(cidr)) throw new Error('RTNETLINK answers: No such process');
    super.removeRoute(route);
  }
}

function setup() {
  const tun = new FlakyTun();
  const { logger, lines } = memoryLogger('forward');
  const routes = new KernelRoutes(tun, prefix('10.42.0.0/24'), logger);
  return { tun, routes, lines };
}

describe('KernelRoutes.sync', () => {
  it('adds the routed prefixes that lie outside the network prefix', () => {
    const { tun, routes } = setup();
    routes.sync(prefixes('192.168.7.0/24', '10.42.0.7/32', '10.42.0.0/24', 'fd00:9::/64', '10.42.0.128/25'));
    expect([...tun.routes].sort()).toEqual(['192.168.7.0/24', 'fd00:9::/64']);
    expect(routes.routes).toEqual(['192.168.7.0/24', 'fd00:9::/64']);
    expect(tun.calls).toEqual(['add 192.168.7.0/24', 'add fd00:9::/64']);
  });

  it('treats a prefix covering the network prefix as outside it', () => {
    const { tun, routes } = setup();
    routes.sync(prefixes('10.0.0.0/8'));
    expect([...tun.routes]).toEqual(['10.0.0.0/8']);
  });

  it('applies the desired set by diff: adds the missing, removes the extra, leaves the rest alone', () => {
    const { tun, routes } = setup();
    routes.sync(prefixes('192.168.7.0/24', '192.168.8.0/24'));
    tun.calls.length = 0;
    routes.sync(prefixes('192.168.8.0/24', '172.16.0.0/12'));
    expect(tun.calls).toEqual(['remove 192.168.7.0/24', 'add 172.16.0.0/12']);
    expect([...tun.routes].sort()).toEqual(['172.16.0.0/12', '192.168.8.0/24']);
    expect(routes.routes).toEqual(['172.16.0.0/12', '192.168.8.0/24']);
    tun.calls.length = 0;
    routes.sync(prefixes('192.168.8.0/24', '172.16.0.0/12'));
    expect(tun.calls).toEqual([]);
    routes.sync([]);
    expect(tun.routes.size).toBe(0);
    expect(routes.routes).toEqual([]);
  });

  it('adds a prefix listed twice once', () => {
    const { tun, routes } = setup();
    routes.sync(prefixes('192.168.7.0/24', '192.168.7.0/24'));
    expect(tun.calls).toEqual(['add 192.168.7.0/24']);
  });

  it('logs a failed add, does not record it, and retries it on the next sync', () => {
    const { tun, routes, lines } = setup();
    tun.failAdd.add('192.168.7.0/24');
    routes.sync(prefixes('192.168.7.0/24', '192.168.8.0/24'));
    expect(routes.routes).toEqual(['192.168.8.0/24']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/WARN .*cannot route 192\.168\.7\.0\/24 into vpn-corp: RTNETLINK answers: Network is unreachable/);
    tun.failAdd.clear();
    tun.calls.length = 0;
    // The same desired set: only the failed route is tried again.
    routes.sync(prefixes('192.168.7.0/24', '192.168.8.0/24'));
    expect(tun.calls).toEqual(['add 192.168.7.0/24']);
    expect(routes.routes).toEqual(['192.168.7.0/24', '192.168.8.0/24']);
  });

  it('logs a failed remove and forgets the route rather than retrying it', () => {
    const { tun, routes, lines } = setup();
    routes.sync(prefixes('192.168.7.0/24'));
    tun.failRemove.add('192.168.7.0/24');
    routes.sync([]);
    expect(routes.routes).toEqual([]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/WARN .*cannot remove route 192\.168\.7\.0\/24 from vpn-corp: RTNETLINK answers: No such process/);
    tun.calls.length = 0;
    routes.sync([]);
    expect(tun.calls).toEqual([]);
    // Wanted again later: added again (addRoute is idempotent).
    routes.sync(prefixes('192.168.7.0/24'));
    expect(tun.calls).toEqual(['add 192.168.7.0/24']);
  });
});
