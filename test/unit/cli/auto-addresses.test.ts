import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveAutoAddress } from '../../../src/config/address.js';
import { newConfig, newNetwork, newPeer } from '../../../src/config/write.js';
import { autoAddressClashes } from '../../../src/cli/auto-addresses.js';
import { formatIp } from '../../../src/netgraph/addr.js';

const corp = newNetwork('corp', '10.42.0.0/24');
const fp = (i: number): string => createHash('sha256').update(`node ${i}`).digest('hex');

/** The first fingerprint after `start` whose auto address in corp equals that of `start`. */
function clashWith(start: number): number {
  const target = formatIp(deriveAutoAddress('corp', corp.prefix, fp(start)));
  for (let i = start + 1; ; i++) if (formatIp(deriveAutoAddress('corp', corp.prefix, fp(i))) === target) return i;
}

describe('autoAddressClashes', () => {
  it('names this node and a pinned peer that derive the same auto address, with the fix', () => {
    const other = clashWith(0);
    const config = newConfig('/etc/vibepn/config.toml', { homeDir: '/root', networks: [corp], peers: [newPeer('beta', ['corp'], { address: '192.0.2.2:51820', fingerprint: fp(other) })] });
    const [clash, ...rest] = autoAddressClashes(config, fp(0));
    expect(rest).toEqual([]);
    expect(clash).toMatchObject({ network: 'corp', first: 'this node', second: 'peer beta', address: formatIp(deriveAutoAddress('corp', corp.prefix, fp(0))) });
    expect(clash!.fix).toBe('set a static networks.corp.address on one of them (or use a larger prefix)');
  });

  it('finds clashes between two pinned peers, and none for distinct addresses, unpinned peers or a static own address', () => {
    const other = clashWith(1);
    const peers = [newPeer('b', ['corp'], { address: '192.0.2.2:51820', fingerprint: fp(1) }), newPeer('c', ['corp'], { address: '192.0.2.3:51820', fingerprint: fp(other) })];
    expect(autoAddressClashes(newConfig('/c', { homeDir: '/root', networks: [corp], peers }), undefined).map((c) => [c.first, c.second])).toEqual([['peer b', 'peer c']]);
    const unpinned = [newPeer('b', ['corp'], { address: '192.0.2.2:51820' })];
    expect(autoAddressClashes(newConfig('/c', { homeDir: '/root', networks: [corp], peers: unpinned }), fp(0))).toEqual([]);
    const staticOwn = newNetwork('corp', '10.42.0.0/24', { address: '10.42.0.1' });
    const clashing = [newPeer('b', ['corp'], { address: '192.0.2.2:51820', fingerprint: fp(clashWith(0)) })];
    expect(autoAddressClashes(newConfig('/c', { homeDir: '/root', networks: [staticOwn], peers: clashing }), fp(0))).toEqual([]);
  });
});
