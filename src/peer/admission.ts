// Who may connect (PROTOCOL.md section 2). Decided once per QUIC connection, right after the TLS
// handshake, from the certificate the peer presented. TLS itself accepts any self-signed
// certificate; this is where trust is actually enforced.

import { certificateInfo, checkValidity, type CertificateInfo } from '../crypto/identity.js';
import type { TrustStore } from '../crypto/trust.js';
import type { PeerConfig } from '../config/types.js';
import type { HandshakeRejectReason } from '../metrics/metrics.js';

export type Admission =
  | {
      ok: true;
      /** The configured peer, or null for an unknown peer let in by accept_unknown_peers. */
      peer: PeerConfig | null;
      name: string;
      fingerprint: string;
      /** How trust was established, for the log line. */
      how: 'pinned' | 'known' | 'first-use' | 'unknown-accepted';
    }
  | { ok: false; reason: HandshakeRejectReason; message: string };

function readCertificate(certDer: Uint8Array | null, now: Date): { info: CertificateInfo } | { refusal: Admission } {
  if (!certDer) return { refusal: { ok: false, reason: 'cert_invalid', message: 'presented no certificate' } };
  let info: CertificateInfo;
  try {
    info = certificateInfo(certDer);
  } catch (error) {
    return { refusal: { ok: false, reason: 'cert_invalid', message: `presented an unreadable certificate (${(error as Error).message})` } };
  }
  const invalid = checkValidity(info.notBefore, info.notAfter, now);
  if (invalid) return { refusal: { ok: false, reason: 'cert_expired', message: `certificate ${info.fingerprint}: ${invalid}` } };
  return { info };
}

function fromTrust(peer: PeerConfig, fingerprint: string, trust: TrustStore): Admission {
  let decision;
  try {
    decision = trust.verify(peer.name, fingerprint, peer.fingerprint);
  } catch (error) {
    // A known-peers file we cannot read or write: refuse rather than trust without a record.
    return { ok: false, reason: 'tofu_mismatch', message: (error as Error).message };
  }
  if (!decision.ok) {
    return { ok: false, reason: decision.reason === 'pin-mismatch' ? 'pin_mismatch' : 'tofu_mismatch', message: decision.message };
  }
  return { ok: true, peer, name: peer.name, fingerprint, how: decision.how };
}

/** We dialed `peer`: the certificate must be the pinned one, or match what we learned by name. */
export function admitOutbound(peer: PeerConfig, certDer: Uint8Array | null, trust: TrustStore, now = new Date()): Admission {
  const read = readCertificate(certDer, now);
  if ('refusal' in read) return read.refusal;
  return fromTrust(peer, read.info.fingerprint, trust);
}

/**
 * Someone dialed us (fix over the original, which accepted anyone). Accepted when the fingerprint
 * is pinned by a configured peer or was learned for one by TOFU. A configured peer with no pin and
 * nothing learned yet is matched by the certificate's CN and trusted on first use, the same rule
 * as dialing it. Anyone else needs accept_unknown_peers.
 */
export function admitInbound(
  certDer: Uint8Array | null,
  peers: readonly PeerConfig[],
  trust: TrustStore,
  acceptUnknown: boolean,
  now = new Date(),
): Admission {
  const read = readCertificate(certDer, now);
  if ('refusal' in read) return read.refusal;
  const { fingerprint, commonName } = read.info;

  const pinned = peers.find((p) => p.fingerprint === fingerprint);
  if (pinned) return { ok: true, peer: pinned, name: pinned.name, fingerprint, how: 'pinned' };

  let learnedName: string | undefined;
  try {
    learnedName = trust.findName(fingerprint);
  } catch (error) {
    return { ok: false, reason: 'tofu_mismatch', message: (error as Error).message };
  }
  const learned = learnedName === undefined ? undefined : peers.find((p) => p.name === learnedName && !p.fingerprint);
  if (learned) return { ok: true, peer: learned, name: learned.name, fingerprint, how: 'known' };

  const byName = peers.find((p) => p.name === commonName);
  if (byName) return fromTrust(byName, fingerprint, trust);

  if (acceptUnknown) {
    return { ok: true, peer: null, name: commonName || `unknown-${fingerprint.slice(0, 8)}`, fingerprint, how: 'unknown-accepted' };
  }
  return {
    ok: false,
    reason: 'unknown_fingerprint',
    message: `certificate ${fingerprint} (CN '${commonName}') belongs to no configured peer (add it with vpnctl add-peer, or set daemon.accept_unknown_peers)`,
  };
}
