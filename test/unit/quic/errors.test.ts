import { describe, expect, it } from 'vitest';
import { formatHostPort, parseHostPort } from '../../../src/quic/hostport.js';
import {
  APP_DEAD_PEER,
  APP_UNTRUSTED,
  describeAppError,
  describeTransportError,
  streamErrorCode,
} from '../../../src/quic/errors.js';
import { fingerprintOfDer } from '../../../src/crypto/identity.js';

describe('parseHostPort', () => {
  it('parses IPv4, hostnames and bracketed IPv6', () => {
    expect(parseHostPort('0.0.0.0:51820')).toEqual({ host: '0.0.0.0', port: 51820 });
    expect(parseHostPort('node2.example:4433')).toEqual({ host: 'node2.example', port: 4433 });
    expect(parseHostPort('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseHostPort('[fd00::1]:65535')).toEqual({ host: 'fd00::1', port: 65535 });
  });

  it('rejects malformed addresses with a message that says how to write them', () => {
    expect(() => parseHostPort('10.0.0.1')).toThrow(/has no port; write it as host:port/);
    expect(() => parseHostPort('::1:51820')).toThrow(/put it in brackets: \[::1\]:51820/);
    expect(() => parseHostPort('[::1]51820')).toThrow(/\[ipv6\]:port/);
    expect(() => parseHostPort('[nope]:1')).toThrow(/not an IPv6 address/);
    expect(() => parseHostPort('host:65536')).toThrow(/port "65536" is not 0\.\.65535/);
    expect(() => parseHostPort('host:-1')).toThrow(/port "-1"/);
  });

  it('formats IPv6 with brackets and round-trips', () => {
    expect(formatHostPort('::1', 5)).toBe('[::1]:5');
    expect(formatHostPort('10.0.0.1', 5)).toBe('10.0.0.1:5');
    expect(parseHostPort(formatHostPort('fe80::2', 9))).toEqual({ host: 'fe80::2', port: 9 });
  });
});

describe('QUIC error helpers', () => {
  it('names application and transport codes', () => {
    expect(describeAppError(APP_UNTRUSTED)).toBe('untrusted certificate');
    expect(describeAppError(APP_DEAD_PEER)).toBe('peer silent too long');
    expect(describeAppError(99)).toBe('unknown application error 99');
    expect(describeTransportError(0)).toBe('no error');
    expect(describeTransportError(0x0a)).toBe('protocol violation');
    expect(describeTransportError(0x178)).toBe('TLS alert 120 (no application protocol (ALPN mismatch))');
  });

  it('extracts stream error codes from quiche error messages only for the asked kind', () => {
    expect(streamErrorCode(new Error('StreamStopped(7)'), 'StreamStopped')).toBe(7);
    expect(streamErrorCode(new Error('StreamReset(42)'), 'StreamReset')).toBe(42);
    expect(streamErrorCode(new Error('StreamReset(42)'), 'StreamStopped')).toBeNull();
    expect(streamErrorCode(new Error('InvalidStreamState(0)'), 'StreamReset')).toBeNull();
    expect(streamErrorCode('StreamReset(1)', 'StreamReset')).toBeNull();
  });

  it('fingerprints DER bytes as 64 lowercase hex characters of SHA-256', () => {
    expect(fingerprintOfDer(new Uint8Array([]))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});
