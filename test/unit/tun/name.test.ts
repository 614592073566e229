import { describe, expect, it } from 'vitest';
import { deriveInterfaceName, interfaceNameProblem, MAX_INTERFACE_NAME_BYTES } from '../../../src/tun/name.js';

describe('deriveInterfaceName', () => {
  it('uses vpn-<network> when it fits and is free', () => {
    expect(deriveInterfaceName('corp', new Set())).toBe('vpn-corp');
    expect(deriveInterfaceName('lab_2.x', new Set())).toBe('vpn-lab_2.x');
  });

  it('gives two networks two names (the original gave both the node name)', () => {
    const taken = new Set<string>();
    const names = ['corp', 'home', 'engineering-west', 'engineering-east'].map((n) => {
      const name = deriveInterfaceName(n, taken);
      taken.add(name);
      return name;
    });
    expect(new Set(names).size).toBe(4);
  });

  it('truncates long names to 15 bytes with a hash that keeps them apart', () => {
    const a = deriveInterfaceName('engineering-west', new Set());
    const b = deriveInterfaceName('engineering-east', new Set());
    expect(a).not.toBe(b);
    for (const name of [a, b]) {
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(MAX_INTERFACE_NAME_BYTES);
      expect(name).toMatch(/^vpn-engine-[0-9a-f]{4}$/);
      expect(interfaceNameProblem(name)).toBeNull();
    }
  });

  it('is deterministic', () => {
    const taken = new Set(['vpn-corp']);
    expect(deriveInterfaceName('corp', taken)).toBe(deriveInterfaceName('corp', new Set(['vpn-corp'])));
    expect(deriveInterfaceName('a-very-long-network-name', new Set())).toBe(deriveInterfaceName('a-very-long-network-name', new Set()));
  });

  it('avoids names already taken, even the hashed ones', () => {
    const first = deriveInterfaceName('corp', new Set(['vpn-corp']));
    expect(first).toMatch(/^vpn-corp-[0-9a-f]{4}$/);
    const second = deriveInterfaceName('corp', new Set(['vpn-corp', first]));
    expect(second).toMatch(/^vpn-corp-[0-9a-f]{4}$/);
    expect(second).not.toBe(first);
  });

  it('replaces characters Linux or ip would choke on and hashes to keep rewritten names distinct', () => {
    const spaced = deriveInterfaceName('a b', new Set());
    const slashed = deriveInterfaceName('a/b', new Set());
    expect(spaced).toMatch(/^vpn-a-b-[0-9a-f]{4}$/);
    expect(slashed).toMatch(/^vpn-a-b-[0-9a-f]{4}$/);
    expect(spaced).not.toBe(slashed);
    expect(deriveInterfaceName('übernetz', new Set())).toMatch(/^[A-Za-z0-9_.-]{1,15}$/);
    expect(deriveInterfaceName('', new Set())).toMatch(/^vpn--[0-9a-f]{4}$/);
  });
});

describe('interfaceNameProblem', () => {
  it('explains what is wrong with a name', () => {
    expect(interfaceNameProblem('vpn-corp')).toBeNull();
    expect(interfaceNameProblem('vpn%d')).toBeNull();
    expect(interfaceNameProblem('')).toBe('is empty');
    expect(interfaceNameProblem('a'.repeat(16))).toBe('is longer than 15 bytes');
    expect(interfaceNameProblem('ü'.repeat(8))).toBe('is longer than 15 bytes');
    expect(interfaceNameProblem('vpn corp')).toMatch(/may only contain/);
    expect(interfaceNameProblem('..')).toBe('is not allowed');
  });
});
