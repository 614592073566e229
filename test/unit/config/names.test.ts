// The one network-name rule (config sections, invites): 1..255 of A-Z a-z 0-9 _ . -
import { describe, expect, it } from 'vitest';
import { networkNameProblem } from '../../../src/config/names.js';

const problem = (name: string) => `'${name}' is not a valid network name (1..255 characters from A-Z a-z 0-9 _ . -)`;

describe('networkNameProblem', () => {
  it('accepts names made of letters, digits, underscore, dot and dash', () => {
    for (const name of ['corp', 'CORP', 'a', '0', 'home-lab', 'site_2', 'eu.west.1', '-', '.', '_', 'a'.repeat(255)]) {
      expect(networkNameProblem(name), name).toBeNull();
    }
  });

  it('refuses the empty name and names past 255 characters', () => {
    expect(networkNameProblem('')).toBe(problem(''));
    expect(networkNameProblem('a'.repeat(256))).toBe(problem('a'.repeat(256)));
  });

  it('refuses every other character, naming the rule', () => {
    const bad = ['home lab', 'corp/1', 'corp:1', 'corp\n', '\ncorp', 'c\u0000rp', 'réseau', 'corp\u2028', '"corp"', 'a=b', 'a[0]', 'corp#'];
    for (const name of bad) expect(networkNameProblem(name), JSON.stringify(name)).toBe(problem(name));
  });
});
