// The project's one host:port parser (moved here from the QUIC layer's own copy, whose cases are
// all kept): what it accepts, and that every refusal names the input and the problem.
import { describe, expect, it } from 'vitest';
import { formatHostPort, hostPortProblem, parseHostPort } from '../../../src/netgraph/hostport.js';

function refusal(text: string, options: Parameters<typeof parseHostPort>[1] = {}): string {
  const result = parseHostPort(text, options);
  if (result.ok) throw new Error(`"${text}" was accepted as ${JSON.stringify(result)}`);
  expect(result.error.startsWith(`'${text}' is not a valid HOST:PORT (`), result.error).toBe(true);
  return result.error;
}

describe('parseHostPort', () => {
  it('parses IPv4, hostnames and bracketed IPv6', () => {
    expect(parseHostPort('0.0.0.0:51820')).toEqual({ ok: true, host: '0.0.0.0', port: 51820 });
    expect(parseHostPort('node2.example:4433')).toEqual({ ok: true, host: 'node2.example', port: 4433 });
    expect(parseHostPort('[::1]:0', { allowPortZero: true })).toEqual({ ok: true, host: '::1', port: 0 });
    expect(parseHostPort('[fd00::1]:65535')).toEqual({ ok: true, host: 'fd00::1', port: 65535 });
  });

  it('rejects malformed addresses with a message that says how to write them', () => {
    expect(refusal('10.0.0.1')).toMatch(/missing :PORT, e\.g\. 203\.0\.113\.42:51820/);
    expect(refusal('::1:51820')).toMatch(/IPv6 addresses need brackets, e\.g\. \[::1\]:51820/);
    expect(refusal('[::1]51820')).toMatch(/expected \[IPv6\]:PORT, e\.g\. \[fd00::1\]:51820/);
    expect(refusal('[nope]:1')).toMatch(/'nope' is not an IPv6 address/);
    expect(refusal('host:65536')).toMatch(/port must be a number 1\.\.65535/);
    expect(refusal('host:-1')).toMatch(/port must be a number 1\.\.65535/);
    expect(refusal('host:-1', { allowPortZero: true })).toMatch(/port must be a number 0\.\.65535/);
  });

  it('refuses port 0 unless asked to allow it (listen sockets)', () => {
    expect(refusal('[::1]:0')).toMatch(/port must be a number 1\.\.65535/);
    expect(parseHostPort('127.0.0.1:0', { allowPortZero: true })).toEqual({ ok: true, host: '127.0.0.1', port: 0 });
  });

  it('tells a bad IPv4 address, a bad hostname and a missing host apart', () => {
    expect(refusal('999.1.1.1:1')).toMatch(/'999\.1\.1\.1' is not an IPv4 address/);
    expect(refusal('bad_host:1')).toMatch(/'bad_host' is not an IP address or hostname/);
    expect(refusal(':51820')).toMatch(/missing host, e\.g\. 0\.0\.0\.0:51820/);
    expect(parseHostPort(':9000', { allowEmptyHost: true })).toEqual({ ok: true, host: '', port: 9000 });
  });

  it('formats IPv6 with brackets and round-trips', () => {
    expect(formatHostPort('::1', 5)).toBe('[::1]:5');
    expect(formatHostPort('10.0.0.1', 5)).toBe('10.0.0.1:5');
    expect(parseHostPort(formatHostPort('fe80::2', 9))).toEqual({ ok: true, host: 'fe80::2', port: 9 });
  });
});

describe('hostPortProblem', () => {
  it('applies the text parser’s rules to a typed endpoint, without text', () => {
    expect(hostPortProblem({ host: '192.0.2.1', port: 51820 })).toBeNull();
    expect(hostPortProblem({ host: 'fd00::1', port: 51820 })).toBeNull();
    expect(hostPortProblem({ host: 'node2.example', port: 1 })).toBeNull();
    expect(hostPortProblem({ host: '0.0.0.0', port: 0 }, { allowPortZero: true })).toBeNull();
    expect(hostPortProblem({ host: '0.0.0.0', port: 0 })).toMatch(/port must be a number 1\.\.65535/);
    expect(hostPortProblem({ host: '999.1.1.1', port: 1 })).toMatch(/'999\.1\.1\.1' is not an IPv4 address/);
    expect(hostPortProblem({ host: 'fd00::zz', port: 1 })).toMatch(/is not an IPv6 address/);
    expect(hostPortProblem({ host: '', port: 9000 })).toMatch(/missing host/);
    expect(hostPortProblem({ host: '', port: 9000 }, { allowEmptyHost: true })).toBeNull();
  });
});
