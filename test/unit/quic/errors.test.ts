import { describe, expect, it } from 'vitest';
import {
  APP_DEAD_PEER,
  APP_UNTRUSTED,
  describeAppError,
  describeTransportError,
  streamErrorCode,
} from '../../../src/quic/errors.js';
import { fingerprintOfDer } from '../../../src/crypto/identity.js';

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
