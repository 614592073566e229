// Application error codes carried in QUIC CONNECTION_CLOSE (application variant) and in
// RESET_STREAM / STOP_SENDING. The peer sees the number and the reason text; the number is
// what code should branch on, the text is for humans reading logs on the other side.

export const APP_NO_ERROR = 0;
export const APP_GOODBYE = 1;
export const APP_DUPLICATE = 2;
export const APP_UNTRUSTED = 3;
export const APP_PROTOCOL_VIOLATION = 4;
export const APP_SHUTDOWN = 5;
export const APP_DEAD_PEER = 6;

const APP_ERROR_NAMES: Readonly<Record<number, string>> = {
  [APP_NO_ERROR]: 'no error',
  [APP_GOODBYE]: 'goodbye',
  [APP_DUPLICATE]: 'duplicate connection',
  [APP_UNTRUSTED]: 'untrusted certificate',
  [APP_PROTOCOL_VIOLATION]: 'protocol violation',
  [APP_SHUTDOWN]: 'shutting down',
  [APP_DEAD_PEER]: 'peer silent too long',
};

export function describeAppError(code: number): string {
  return APP_ERROR_NAMES[code] ?? `unknown application error ${code}`;
}

// RFC 9000 section 20.1; 0x100–0x1ff are TLS alerts offset by 0x100 (RFC 9001 section 4.8).
const TRANSPORT_ERROR_NAMES: readonly string[] = [
  'no error',
  'internal error',
  'connection refused',
  'flow control error',
  'stream limit error',
  'stream state error',
  'final size error',
  'frame encoding error',
  'transport parameter error',
  'connection id limit error',
  'protocol violation',
  'invalid token',
  'application error',
  'crypto buffer exceeded',
  'key update error',
  'AEAD limit reached',
  'no viable path',
];

const TLS_ALERT_NAMES: Readonly<Record<number, string>> = {
  40: 'handshake failure',
  42: 'bad certificate',
  43: 'unsupported certificate',
  45: 'certificate expired',
  46: 'certificate unknown',
  48: 'unknown CA',
  80: 'internal error',
  116: 'certificate required',
  120: 'no application protocol (ALPN mismatch)',
};

export function describeTransportError(code: number): string {
  if (code >= 0x100 && code <= 0x1ff) {
    const alert = code - 0x100;
    return `TLS alert ${alert} (${TLS_ALERT_NAMES[alert] ?? 'see RFC 8446 section 6'})`;
  }
  return TRANSPORT_ERROR_NAMES[code] ?? `unknown transport error ${code}`;
}

/** The quiche binding reports stream errors as thrown Errors whose message is e.g. `StreamStopped(7)`. */
export function streamErrorCode(error: unknown, kind: 'StreamStopped' | 'StreamReset'): number | null {
  if (!(error instanceof Error) || !error.message.startsWith(kind + '(')) return null;
  const code = Number.parseInt(error.message.slice(kind.length + 1), 10);
  return Number.isFinite(code) ? code : 0;
}

/**
 * quiche refuses to send on a stream the peer has not granted yet (its MAX_STREAMS). That is a
 * wait, not a failure: the data stays queued and goes once the limit is raised.
 */
export function isStreamLimit(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('StreamLimit');
}
