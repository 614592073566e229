// Why a connection closed, in one shape whoever closed it: the peer's CONNECTION_CLOSE first (it
// explains the end even if we closed too), then our own close() call, then quiche's local error,
// then the idle timeout.

import type { Connection } from '@matrixai/quic/native/index.js';
import type { QuicCloseInfo } from './connection-types.js';

const textDecoder = new TextDecoder();

export function closeInfoOf(native: Connection | null, localClose: QuicCloseInfo | null): QuicCloseInfo {
  const peer = native?.peerError();
  if (peer) {
    const reason = textDecoder.decode(peer.reason);
    return { local: false, errorCode: peer.errorCode, reason, isApp: peer.isApp, timedOut: false };
  }
  if (localClose !== null) return localClose;
  const local = native?.localError();
  if (local) {
    const reason = local.reason.byteLength > 0 ? textDecoder.decode(local.reason) : '';
    return { local: true, errorCode: local.errorCode, reason, isApp: local.isApp, timedOut: false };
  }
  if (native?.isTimedOut()) {
    return { local: true, errorCode: 0, reason: 'idle timeout', isApp: false, timedOut: true };
  }
  return { local: true, errorCode: 0, reason: 'connection closed', isApp: false, timedOut: false };
}
