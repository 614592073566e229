import { describe, expect, it } from 'vitest';
import type { Connection } from '@matrixai/quic/native/index.js';
import { closeInfoOf } from '../../../src/quic/close-info.js';

type Err = { isApp: boolean; errorCode: number; reason: Uint8Array } | null;
const native = (peer: Err, local: Err, timedOut = false): Connection =>
  ({ peerError: () => peer, localError: () => local, isTimedOut: () => timedOut }) as unknown as Connection;
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('closeInfoOf', () => {
  it("puts the peer's CONNECTION_CLOSE first, then our close(), then quiche's local error, then the idle timeout", () => {
    const ours = { local: true, errorCode: 5, reason: 'goodbye', isApp: true, timedOut: false };
    expect(closeInfoOf(native({ isApp: true, errorCode: 2, reason: text('dup') }, null), ours)).toEqual({ local: false, errorCode: 2, reason: 'dup', isApp: true, timedOut: false });
    expect(closeInfoOf(native(null, { isApp: false, errorCode: 0x10, reason: text('x') }), ours)).toBe(ours);
    expect(closeInfoOf(native(null, { isApp: false, errorCode: 0x10, reason: new Uint8Array() }), null)).toEqual({ local: true, errorCode: 0x10, reason: '', isApp: false, timedOut: false });
    expect(closeInfoOf(native(null, null, true), null)).toEqual({ local: true, errorCode: 0, reason: 'idle timeout', isApp: false, timedOut: true });
    expect(closeInfoOf(native(null, null), null).reason).toBe('connection closed');
    expect(closeInfoOf(null, null).reason).toBe('connection closed');
  });
});
