// holdForRedemption: a stranger's connection on an admin, held until its first control message
// says whether it redeems an invite. Fake connection and streams; the redeemer is a stub whose
// answer the test controls.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/clock/fake.js';
import { encodeControlMessage } from '../../../src/control/messages.js';
import type { HeldStreams } from '../../../src/peer/held-streams.js';
import { MAX_STRANGER_BYTES } from '../../../src/peer/redemption.js';
import { MAX_REFUSAL_REASON, holdForRedemption, type RedeemAnswer, type RedeemRequest } from '../../../src/peer/redemption.js';
import { APP_PROTOCOL_VIOLATION, APP_UNTRUSTED } from '../../../src/quic/errors.js';
import type { QuicStream } from '../../../src/quic/stream.js';
import { FakeQuicConnection, helloBytes } from '../../helpers/unit-peer-fakes.js';
import { concatBytes } from '../../helpers/unit-fakes.js';

const SECRET = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const FINGERPRINT = 'b1'.repeat(32);
const TIMEOUT_MS = 5000;
const J = encodeControlMessage({ type: 'redeem', network: 'corp', secret: SECRET, address: Uint8Array.of(10, 42, 0, 20) });

interface Held {
  conn: FakeQuicConnection;
  clock: FakeClock;
  requests: RedeemRequest[];
  refused: number;
  admitted: Array<{ name: string; held: HeldStreams }>;
  /** Settles the redeemer's pending answer. */
  answer(result: RedeemAnswer | Error): Promise<void>;
}

function hold(remote = '[::ffff:192.0.2.2]:40000'): Held {
  const conn = new FakeQuicConnection('inbound', remote);
  const clock = new FakeClock();
  const pending: Array<(r: RedeemAnswer | Error) => void> = [];
  const state: Held = {
    conn,
    clock,
    requests: [],
    refused: 0,
    admitted: [],
    async answer(result) {
      pending.shift()!(result);
      // Let the redeemer's promise callbacks run.
      for (let i = 0; i < 3; i++) await Promise.resolve();
    },
  };
  holdForRedemption({
    conn: conn.asQuic(),
    fingerprint: FINGERPRINT,
    name: 'bob',
    clock,
    timeoutMs: TIMEOUT_MS,
    redeemer: {
      active: true,
      revoked: () => null,
      redeem: (request) => {
        state.requests.push(request);
        return new Promise<RedeemAnswer>((resolve, reject) => pending.push((r) => (r instanceof Error ? reject(r) : resolve(r))));
      },
    },
    refuse: () => state.refused++,
    admit: (name, held) => state.admitted.push({ name, held }),
  });
  return state;
}

/** Releases held streams into collectors: what the session would read, per stream. */
function replay(held: HeldStreams): Array<{ bytes: Uint8Array[]; ended: boolean }> {
  const out: Array<{ bytes: Uint8Array[]; ended: boolean }> = [];
  held.release((stream: QuicStream) => {
    const entry = { bytes: [] as Uint8Array[], ended: false };
    out.push(entry);
    stream.onData = (chunk) => entry.bytes.push(chunk.slice());
    stream.onEnd = () => (entry.ended = true);
  });
  return out;
}

describe('holdForRedemption', () => {
  it('J first: redeem gets the body, fingerprint, name and remote; admit replays every held byte in order', async () => {
    const h = hold();
    const control = h.conn.peerStream(concatBytes([J, helloBytes(7n)]));
    const data = h.conn.peerStream(Uint8Array.of(1, 2, 3));
    data.onData(Uint8Array.of(4, 5));
    data.onEnd();
    control.onData(helloBytes(8n));
    expect(h.requests).toHaveLength(1);
    expect(h.requests[0]).toEqual({
      body: { network: 'corp', secret: SECRET, address: Uint8Array.of(10, 42, 0, 20) },
      fingerprint: FINGERPRINT,
      name: 'bob',
      remote: { host: '::ffff:192.0.2.2', port: 40000 },
    });
    await h.answer({ ok: true, name: 'bob-member' });
    expect(h.refused).toBe(0);
    expect(h.admitted.map((a) => a.name)).toEqual(['bob-member']);
    const streams = replay(h.admitted[0]!.held);
    expect(streams.map((s) => concatBytes(s.bytes))).toEqual([concatBytes([J, helloBytes(7n), helloBytes(8n)]), Uint8Array.of(1, 2, 3, 4, 5)]);
    expect(streams.map((s) => s.ended)).toEqual([false, true]);
    expect(h.conn.closes).toEqual([]);
    // Decided: the deadline no longer matters.
    expect(h.clock.pending).toBe(0);
  });

  it('a J split across chunks, down to single bytes, is still read once', async () => {
    const h = hold();
    const control = h.conn.peerStream(J.subarray(0, 1));
    for (let i = 1; i < J.length; i++) {
      expect(h.requests).toHaveLength(0);
      control.onData(J.subarray(i, i + 1));
    }
    control.onData(helloBytes(1n));
    expect(h.requests).toHaveLength(1);
    expect(h.requests[0]!.body.network).toBe('corp');
    await h.answer({ ok: true, name: 'bob' });
    expect(concatBytes(replay(h.admitted[0]!.held)[0]!.bytes)).toEqual(concatBytes([J, helloBytes(1n)]));
  });

  it('a Hello first is refused at once, without asking the redeemer', () => {
    const h = hold();
    h.conn.peerStream(concatBytes([helloBytes(1n), J]));
    expect(h.refused).toBe(1);
    expect(h.requests).toEqual([]);
    expect(h.clock.pending).toBe(0);
  });

  it('a control stream that does not decode is refused', () => {
    const h = hold();
    h.conn.peerStream(Uint8Array.of(0, 0));
    expect(h.refused).toBe(1);
    expect(h.requests).toEqual([]);
  });

  it('a malformed J (bad address family) is refused, not redeemed', () => {
    const h = hold();
    const bad = J.slice();
    bad[bad.length - 5] = 5;
    h.conn.peerStream(bad);
    expect(h.refused).toBe(1);
    expect(h.requests).toEqual([]);
  });

  it('nothing, or only part of a J, before the deadline: refused once; a J after it changes nothing', () => {
    const h = hold();
    const control = h.conn.peerStream(J.subarray(0, 5));
    h.clock.advance(TIMEOUT_MS - 1);
    expect(h.refused).toBe(0);
    h.clock.advance(1);
    expect(h.refused).toBe(1);
    control.onData(J.subarray(5));
    h.clock.advance(TIMEOUT_MS);
    expect(h.refused).toBe(1);
    expect(h.requests).toEqual([]);
  });

  it('no stream at all before the deadline: refused', () => {
    const h = hold();
    h.clock.advance(TIMEOUT_MS);
    expect(h.refused).toBe(1);
  });

  it('a refusal closes with APP_UNTRUSTED and "<code> <message>"', async () => {
    const h = hold();
    h.conn.peerStream(J);
    await h.answer({ ok: false, code: 'invite.exhausted', message: 'the invite has been used as many times as it allows; ask the admin for a new one' });
    expect(h.conn.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'invite.exhausted the invite has been used as many times as it allows; ask the admin for a new one' }]);
    expect(h.admitted).toEqual([]);
    expect(h.refused).toBe(0);
  });

  it('a long refusal is cut to MAX_REFUSAL_REASON; a redeemer failure closes as invite.error', async () => {
    const h = hold();
    h.conn.peerStream(J);
    await h.answer({ ok: false, code: 'member.name_taken', message: 'x'.repeat(1000) });
    expect(h.conn.closes[0]!.reason).toHaveLength(MAX_REFUSAL_REASON);
    expect(h.conn.closes[0]!.reason.startsWith('member.name_taken x')).toBe(true);

    const k = hold();
    k.conn.peerStream(J);
    await k.answer(new Error('cannot write the invite ledger /etc/vibepn/invites.json'));
    expect(k.conn.closes).toEqual([{ code: APP_UNTRUSTED, reason: 'invite.error cannot write the invite ledger /etc/vibepn/invites.json' }]);
  });

  it('a connection closed while the redeemer decides is left alone', async () => {
    const h = hold();
    h.conn.peerStream(J);
    h.conn.close(0, 'gone');
    await h.answer({ ok: true, name: 'bob' });
    expect(h.admitted).toEqual([]);
    expect(h.conn.closes).toEqual([{ code: 0, reason: 'gone' }]);
  });

  it(`more than a stranger's ${MAX_STRANGER_BYTES / 1024} KiB before admission closes as a protocol violation`, () => {
    const h = hold();
    h.conn.peerStream(J);
    const data = h.conn.peerStream();
    data.onData(new Uint8Array(MAX_STRANGER_BYTES - J.length));
    expect(h.conn.closes).toEqual([]);
    data.onData(new Uint8Array(1));
    expect(h.conn.closes).toEqual([{ code: APP_PROTOCOL_VIOLATION, reason: 'too much data before admission' }]);
  });
});
