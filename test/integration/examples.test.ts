// The shipped example config must stay valid as the loader evolves.
import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { loadConfig } from '../../src/config/load.js';

describe('examples', () => {
  it('examples/config.toml loads and validates', () => {
    const config = loadConfig(resolve(import.meta.dirname, '../../examples/config.toml'));
    expect(config.peers.map((p) => p.name)).toEqual(['hq', 'laptop']);
    expect(config.networks.get('corp')).toMatchObject({ prefix: '10.42.0.0/24', interface: 'vpn-corp', routes: ['192.168.50.0/24'] });
    expect(config.peers[0]!.allowedRoutes).toEqual(['192.168.10.0/24']);
  });
});
