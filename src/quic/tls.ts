// Builds the quiche configuration shared by both roles of one endpoint: the same certificate is
// presented whether we dial or accept (mutual TLS), and the same transport tuning applies.
//
// Trust is NOT decided here. Certificates are self-signed, so chain verification can only fail;
// `withBoringSslCtx(verifyPeer=true, verifyAllowFail=true)` makes BoringSSL request and require a
// peer certificate but accept it whatever its chain says. The caller then reads
// `QuicConnection.peerCertDer()` and decides by fingerprint (PROTOCOL.md section 2).
// A peer that presents no certificate fails the handshake (TLS alert 116, certificate_required),
// so an established connection always has a peer certificate.

import { X509Certificate } from 'node:crypto';
import { quiche } from '@matrixai/quic/native/index.js';
import type { CongestionControlAlgorithm, Config } from '@matrixai/quic/native/index.js';

export const VIBEPN_ALPN = 'vibepn/0.1';

// BoringSSL rejects the rsa_pss_pss_* family and ed448; everything else a peer may sign with is here.
const SIGNATURE_ALGORITHMS = [
  'ecdsa_secp256r1_sha256',
  'ecdsa_secp384r1_sha384',
  'ecdsa_secp521r1_sha512',
  'ed25519',
  'rsa_pss_rsae_sha256',
  'rsa_pss_rsae_sha384',
  'rsa_pss_rsae_sha512',
  'rsa_pkcs1_sha256',
  'rsa_pkcs1_sha384',
  'rsa_pkcs1_sha512',
].join(':');

export type CongestionControl = 'cubic' | 'reno' | 'bbr';

export interface QuicTransportOptions {
  certPem: string;
  keyPem: string;
  alpn: string;
  idleTimeoutMs: number;
  /** Largest UDP payload we send; 1350 survives PPPoE/tunnels, 1452 fits any 1500-MTU link (IPv6 too). */
  maxUdpPayload: number;
  congestionControl: CongestionControl;
}

// Windows sized for a VPN tunnel: a window smaller than bandwidth x RTT caps throughput no matter
// how fast the event loop is (16 MiB covers ~1.3 Gbit/s at 100 ms).
const INITIAL_MAX_DATA = 16 * 1024 * 1024;
const INITIAL_MAX_STREAM_DATA = 8 * 1024 * 1024;
const MAX_CONNECTION_WINDOW = 24 * 1024 * 1024;
const MAX_STREAM_WINDOW = 16 * 1024 * 1024;
// The original VibePN opens one stream per packet and waits up to 2 s for stream credit: a low
// limit caps its throughput at a few Mbit/s on any real RTT. Streams cost memory only when used.
const INITIAL_MAX_STREAMS_BIDI = 2000;
// We accept datagrams up to the Ethernet MTU regardless of what we send ourselves.
const MAX_RECV_UDP_PAYLOAD = 1500;
/** DATAGRAM frames quiche holds per connection each way (about 1.3 MB of relayed packets). */
const DATAGRAM_QUEUE = 1024;

export function buildQuicheConfig(options: QuicTransportOptions): Config {
  const encoder = new TextEncoder();
  let config: Config;
  try {
    config = quiche.Config.withBoringSslCtx(
      true,
      true,
      null,
      [encoder.encode(options.keyPem)],
      [encoder.encode(options.certPem)],
      SIGNATURE_ALGORITHMS,
    );
  } catch (error) {
    throw new Error(
      `QUIC TLS setup failed (${(error as Error).message}): the certificate and key must be PEM ` +
        'and belong together; regenerate them or fix the cert/key paths in the config',
    );
  }
  config.setApplicationProtos([options.alpn]);
  config.setMaxIdleTimeout(options.idleTimeoutMs);
  config.setMaxRecvUdpPayloadSize(MAX_RECV_UDP_PAYLOAD);
  config.setMaxSendUdpPayloadSize(options.maxUdpPayload);
  config.setInitialMaxData(INITIAL_MAX_DATA);
  config.setInitialMaxStreamDataBidiLocal(INITIAL_MAX_STREAM_DATA);
  config.setInitialMaxStreamDataBidiRemote(INITIAL_MAX_STREAM_DATA);
  // The protocol uses bidirectional streams only; a unidirectional one from a peer is refused by
  // the transport (stream limit 0) instead of reaching the application.
  config.setInitialMaxStreamDataUni(0);
  config.setInitialMaxStreamsUni(0);
  config.setInitialMaxStreamsBidi(INITIAL_MAX_STREAMS_BIDI);
  config.setMaxConnectionWindow(MAX_CONNECTION_WINDOW);
  config.setMaxStreamWindow(MAX_STREAM_WINDOW);
  // A laptop that changes networks keeps the connections it dialed: its packets arrive from a new
  // address and quiche validates and follows the new path (RFC 9000 section 9).
  config.setDisableActiveMigration(false);
  config.setCcAlgorithm(congestionControlAlgorithm(options.congestionControl));
  // On, though datagrams go out as soon as quiche produces them (SendInfo.at is not waited for):
  // quiche's loss recovery takes each packet's send time from the pacer, and with the pacer off
  // those times go stale, so under loss the RTT estimate grows without bound and sending stalls
  // for seconds (a 20 MB transfer at 5 % loss never finished).
  config.enablePacing(true);
  // DATAGRAM frames carry relayed end-to-end packets (PROTOCOL.md#v-relay); the queues bound what
  // a relay holds per connection. A peer that does not know the transport parameter ignores it.
  config.enableDgram(true, DATAGRAM_QUEUE, DATAGRAM_QUEUE);
  return config;
}

function congestionControlAlgorithm(name: CongestionControl): CongestionControlAlgorithm {
  switch (name) {
    case 'cubic':
      return quiche.CongestionControlAlgorithm.CUBIC;
    case 'reno':
      return quiche.CongestionControlAlgorithm.Reno;
    case 'bbr':
      return quiche.CongestionControlAlgorithm.BBR;
  }
}

/** DER bytes of the first certificate in a PEM text, e.g. to compute our own fingerprint. */
export function certDerFromPem(certPem: string): Uint8Array {
  return new Uint8Array(new X509Certificate(certPem).raw);
}
