// The rules a [[peers]] entry, an invite and vpnctl's flags share (peer-values.ts).
import { describe, expect, it } from 'vitest';
import { networkNameProblem } from '../../../src/config/names.js';
import { peerNameProblem, undialableProblem } from '../../../src/config/peer-values.js';
import { errorsOf, FILE, withIdentity } from './parse-helpers.js';

const problem = (name: string) => `'${name}' is not a valid peer name (1..255 characters from A-Z a-z 0-9 _ . -)`;

describe('peerNameProblem', () => {
  it('is the network-name rule, worded for peers', () => {
    const names = ['hq', 'node-2', 'eu.west_1', 'a'.repeat(255), '', 'a'.repeat(256), 'bad name!', 'my laptop', 'é', 'a\nb', 'x"y', 'a=b', '[hq]'];
    for (const name of names) {
      expect(peerNameProblem(name) === null, JSON.stringify(name)).toBe(networkNameProblem(name) === null);
      if (peerNameProblem(name) !== null) expect(peerNameProblem(name)).toBe(problem(name));
    }
  });
});

describe('undialableProblem', () => {
  it('refuses the unspecified addresses of both families, and nothing else', () => {
    expect(undialableProblem({ host: '0.0.0.0', port: 51820 })).toBe(
      '0.0.0.0:51820 is the unspecified address: to a listener it means "every interface", but dialed it reaches nothing; ' +
        'give the address other machines reach that node at (its public IP or hostname), e.g. 203.0.113.7:51820',
    );
    expect(undialableProblem({ host: '::', port: 1 })).toContain('[::]:1 is the unspecified address');
    expect(undialableProblem({ host: '0:0::0', port: 1 })).toContain('is the unspecified address');
    for (const host of ['127.0.0.1', '0.0.0.1', '::1', '10.0.0.0', 'example.org', '0.example']) expect(undialableProblem({ host, port: 1 }), host).toBeNull();
  });
});

// The loader's side of the peer-name rule: enable once src/config/load.ts applies peerNameProblem
// to peers[i].name (the lines are in the hand-off to the lead).
describe('parseConfig: peer names (enable once load.ts checks them)', () => {
  it('refuses a peer name that add-peer refuses, at its line', () => {
    const text = withIdentity('[[peers]]\nname = "bad name!"\naddress = "192.0.2.1:51820"\nnetworks = ["corp"]\n\n[networks.corp]\nprefix = "10.42.0.0/24"\n');
    expect(errorsOf(text)).toEqual([`${FILE}:5: peers[0].name: ${problem('bad name!')}`]);
  });
});
