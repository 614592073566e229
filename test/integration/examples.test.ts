// The shipped example config must stay valid as the loader evolves.
import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { formatOptionalEndpoint } from '../../src/config/values.js';
import { formatPrefix } from '../../src/netgraph/addr.js';

describe('examples', () => {
  it('examples/config.toml loads and validates', () => {
    const config = loadConfig(resolve(import.meta.dirname, '../../examples/config.toml'));
    expect(config.peers.map((p) => p.name)).toEqual(['hq', 'laptop']);
    const corp = config.networks.get('corp')!;
    expect(corp).toMatchObject({ interface: 'vpn-corp', address: 'auto' });
    expect(formatPrefix(corp.prefix)).toBe('10.42.0.0/24');
    expect(corp.routes.map(formatPrefix)).toEqual(['192.168.50.0/24']);
    // hq is corp's admin: the roster it signs is believed here.
    expect(corp.admins).toEqual([config.peers[0]!.fingerprint]);
    expect(config.peers[0]!.allowedRoutes.map(formatPrefix)).toEqual(['192.168.10.0/24']);
    // The inbound-only laptop is pinned, as the loader requires.
    expect(formatOptionalEndpoint(config.peers[1]!.address)).toBe('');
    expect(config.peers[1]!.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });
});
