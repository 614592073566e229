// Who may connect (PROTOCOL.md section 2). Decided once per QUIC connection, right after the TLS
// handshake, from the certificate the peer presented. TLS itself accepts any self-signed
// certificate; this is where trust is actually enforced. Pure: a 'first-use' admission is only
// a verdict, and the caller records the fingerprint (TrustStore.learn) before it lets the peer in.

import { certificateInfo, checkValidity, type CertificateInfo } from '../crypto/identity.js';
import type { TrustView } from '../crypto/trust.js';
import type { PeerConfig } from '../config/types.js';
import type { HandshakeRejectReason } from '../metrics/metrics.js';
import { formatHostPort } from '../netgraph/hostport.js';

export type Admission =
  | {
      ok: true;
      /** The configured peer, or null for an unknown peer let in by accept_unknown_peers. */
      peer: PeerConfig | null;
      name: string;
      fingerprint: string;
      /** How trust was established, for the log line; 'first-use' must be learned before use. */
      how: 'pinned' | 'known' | 'first-use' | 'unknown-accepted';
    }
  | { ok: false; reason: HandshakeRejectReason; message: string };

type Refusal = Extract<Admission, { ok: false }>;

function readCertificate(certDer: Uint8Array | null, now: Date): { info: CertificateInfo } | { refusal: Refusal } {
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

/** Runs a trust lookup; a known-peers file we cannot read refuses rather than trusts without a record. */
function guarded<T>(lookup: () => T): { value: T } | { refusal: Refusal } {
  try {
    return { value: lookup() };
  } catch (error) {
    return { refusal: { ok: false, reason: 'tofu_mismatch', message: (error as Error).message } };
  }
}

function fromTrust(peer: PeerConfig, fingerprint: string, trust: TrustView): Admission {
  const checked = guarded(() => trust.check(peer.name, fingerprint, peer.fingerprint));
  if ('refusal' in checked) return checked.refusal;
  const decision = checked.value;
  if (!decision.ok) {
    return { ok: false, reason: decision.reason === 'pin-mismatch' ? 'pin_mismatch' : 'tofu_mismatch', message: decision.message };
  }
  return { ok: true, peer, name: peer.name, fingerprint, how: decision.how };
}

export interface OutboundCheck {
  peer: PeerConfig;
  certDer: Uint8Array | null;
  trust: TrustView;
  /** This node's own fingerprint: an address that leads back here must not be "learned". */
  localFingerprint: string;
  now?: Date;
}

/**
 * We dialed `peer` at the address its config gives: the certificate must be the pinned one, or
 * match what we learned for that name, or, with nothing learned yet, it is learned now. Dialing
 * an address we chose is what makes trust on first use meaningful (as with SSH).
 */
export function admitOutbound(check: OutboundCheck): Admission {
  const read = readCertificate(check.certDer, check.now ?? new Date());
  if ('refusal' in read) return read.refusal;
  const { peer } = check;
  if (read.info.fingerprint === check.localFingerprint) {
    return {
      ok: false,
      reason: 'cert_invalid',
      message: `${peer.name}'s address leads back to this node (it answered with this node's own certificate); fix peers.address for ${peer.name}`,
    };
  }
  return fromTrust(peer, read.info.fingerprint, check.trust);
}

export interface InboundCheck {
  certDer: Uint8Array | null;
  peers: readonly PeerConfig[];
  trust: TrustView;
  acceptUnknown: boolean;
  /** The IP the connection came from (IPv4-mapped IPv6 is treated as IPv4). */
  remoteHost: string;
  /** The IP addresses an unpinned peer's configured address stands for. */
  hostsOf(peer: PeerConfig): readonly string[];
  now?: Date;
}

/**
 * Someone dialed us (fix over the original, which accepted anyone). Accepted when the fingerprint
 * is pinned by a configured peer or was learned for one by TOFU. A certificate's CN is chosen by
 * whoever made it, so it never decides trust by itself: an unpinned peer with nothing learned
 * yet is learned inbound only when the connection comes from its configured address's IP, which
 * takes the same network position as answering our dial there. Anyone else needs
 * accept_unknown_peers, and then never takes a configured peer's name.
 */
export function admitInbound(check: InboundCheck): Admission {
  const read = readCertificate(check.certDer, check.now ?? new Date());
  if ('refusal' in read) return read.refusal;
  const { fingerprint, commonName } = read.info;
  const { peers, trust } = check;

  const pinned = peers.find((p) => p.fingerprint === fingerprint);
  if (pinned) return { ok: true, peer: pinned, name: pinned.name, fingerprint, how: 'pinned' };

  const learnedName = guarded(() => trust.findName(fingerprint));
  if ('refusal' in learnedName) return learnedName.refusal;
  const learned = learnedName.value === undefined ? undefined : peers.find((p) => p.name === learnedName.value && !p.fingerprint);
  if (learned) return { ok: true, peer: learned, name: learned.name, fingerprint, how: 'known' };

  const remote = normalizeHost(check.remoteHost);
  const unlearned = guarded(() => peers.filter((p) => !p.fingerprint && trust.get(p.name) === undefined));
  if ('refusal' in unlearned) return unlearned.refusal;
  const atAddress = unlearned.value.filter((p) => check.hostsOf(p).some((h) => normalizeHost(h) === remote));
  const fromItsAddress = atAddress.length === 1 ? atAddress[0] : atAddress.find((p) => p.name === commonName);
  if (fromItsAddress) return fromTrust(fromItsAddress, fingerprint, trust);

  const byName = peers.find((p) => p.name === commonName);
  if (byName && (byName.fingerprint || trust.get(byName.name) !== undefined)) {
    // A configured name with a known key: say which key was expected.
    const verdict = fromTrust(byName, fingerprint, trust);
    if (!verdict.ok) return verdict;
  }
  if (check.acceptUnknown) {
    const name = commonName && !byName ? commonName : `unknown-${fingerprint.slice(0, 8)}`;
    return { ok: true, peer: null, name, fingerprint, how: 'unknown-accepted' };
  }
  if (byName) {
    const where = byName.address ? `its address is ${formatHostPort(byName.address.host, byName.address.port)}` : 'it has no address';
    return {
      ok: false,
      reason: 'unknown_fingerprint',
      message:
        `certificate ${fingerprint} claims the name '${commonName}', but ${byName.name} is not pinned and the connection came from ${check.remoteHost} (${where}); ` +
        `an unpinned peer is learned only over a connection to or from its own address: pin its fingerprint to accept it from anywhere`,
    };
  }
  return {
    ok: false,
    reason: 'unknown_fingerprint',
    message: `certificate ${fingerprint} (CN '${commonName}') belongs to no configured peer (add it with vpnctl add-peer, or set daemon.accept_unknown_peers)`,
  };
}

/** "::ffff:192.0.2.1" and "192.0.2.1" are one host; IPv6 text compares case-insensitively. */
export function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}
