// A stranger who may hold an invite (PROTOCOL.md#v-redeem). On an admin node, a connection whose
// certificate belongs to no peer is not refused at once: its first control message may be J, an
// invite's secret. Its streams are held (bounded, held-streams.ts) until that message is read or
// the handshake deadline passes. Anything but J is the refusal it would have had anyway; a J goes
// to the redeemer (src/membership/redeem.ts), whose refusal code closes the connection and whose
// admission lets it in as the member it became, its held bytes replayed to the session.

import type { Clock } from '../clock/clock.js';
import { ControlDecoder } from '../control/decoder.js';
import type { RedeemBody } from '../control/roster-messages.js';
import type { HostPort } from '../netgraph/hostport.js';
import type { QuicConnection } from '../quic/connection.js';
import { APP_PROTOCOL_VIOLATION, APP_UNTRUSTED } from '../quic/errors.js';
import { HeldStreams } from './held-streams.js';

export interface RedeemRequest {
  body: RedeemBody;
  fingerprint: string;
  name: string;
  remote: HostPort;
}

export type RedeemAnswer = { ok: true; name: string } | { ok: false; code: string; message: string };

/** The admin side of invites, as admission sees it. */
export interface InviteRedeemer {
  /** This node issues invites: a stranger is worth waiting for. */
  readonly active: boolean;
  /** The refusal reason (code first) for a key a roster revoked, or null. */
  revoked(fingerprint: string): string | null;
  redeem(request: RedeemRequest): Promise<RedeemAnswer>;
}

/** A QUIC close reason carries the code first, so the joiner can show and count it (refusal.ts). */
export const MAX_REFUSAL_REASON = 300;
/**
 * What a stranger may send before it is decided: J, Hello, C and its announcements are well under
 * this, and a node flooded with strangers holds at most MAX_HELD_STRANGERS × this.
 */
export const MAX_STRANGER_BYTES = 16 * 1024;
/** Strangers held at once on one node; past it, a new one is refused at once as if no invite existed. */
export const MAX_HELD_STRANGERS = 64;

export interface HoldOptions {
  conn: QuicConnection;
  fingerprint: string;
  name: string;
  redeemer: InviteRedeemer;
  clock: Clock;
  timeoutMs: number;
  /** No J came (or not in time): the refusal the connection would have had without invites. */
  refuse(): void;
  /** The joiner is a member now, as `name`: admit the connection and replay what it sent. */
  admit(name: string, held: HeldStreams): void;
}

export function holdForRedemption(options: HoldOptions): void {
  const { conn } = options;
  const held = new HeldStreams(() => conn.close(APP_PROTOCOL_VIOLATION, 'too much data before admission'), MAX_STRANGER_BYTES);
  let decided = false;
  const decide = (): boolean => {
    if (decided) return false;
    decided = true;
    cancel();
    return true;
  };
  const cancel = options.clock.after(options.timeoutMs, () => {
    if (decide()) options.refuse();
  });
  let first = true;
  conn.onStream = (stream) => {
    held.hold(stream);
    if (!first) return;
    first = false;
    // The first stream the dialer opens is the control stream: peek at its first message.
    const decoder = new ControlDecoder();
    const keep = stream.onData;
    stream.onData = (chunk) => {
      keep(chunk);
      if (decided) return;
      let message: Parameters<Parameters<ControlDecoder['push']>[1]>[0] | undefined;
      const error = decoder.push(chunk, (msg) => {
        message ??= msg;
      });
      if (error !== null || (message && message.type !== 'redeem')) {
        if (decide()) options.refuse();
        return;
      }
      if (!message || message.type !== 'redeem' || !decide()) return;
      const body: RedeemBody = { network: message.network, secret: message.secret, address: message.address };
      options.redeemer.redeem({ body, fingerprint: options.fingerprint, name: options.name, remote: conn.remoteEndpoint() }).then(
        (answer) => {
          if (conn.isClosed) return;
          if (answer.ok) options.admit(answer.name, held);
          else conn.close(APP_UNTRUSTED, `${answer.code} ${answer.message}`.slice(0, MAX_REFUSAL_REASON));
        },
        (error: unknown) => {
          if (!conn.isClosed) conn.close(APP_UNTRUSTED, `invite.error ${(error as Error).message}`.slice(0, MAX_REFUSAL_REASON));
        },
      );
    };
  };
}
