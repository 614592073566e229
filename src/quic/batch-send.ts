// Batched UDP sends for the QUIC endpoint: the datagrams of one flush leave through a single
// native call (UdpSender in src/quic/native/udp.c), with UDP GSO for runs of equal-size datagrams,
// instead of one dgram.send() each. node's dgram keeps owning the socket (bind, receive, close);
// only its fd is borrowed for sending.
//
// The fd is not public API. It is read from dgram's internal state; when that or the native addon
// is unavailable, openBatchSender() returns null and the endpoint keeps using socket.send().

import type dgram from 'node:dgram';
import { loadAddon } from '../native/load.js';

export interface BatchSender {
  /** Sends datagrams packed back to back in `buffer`, lengths[i] bytes each; returns how many went out. */
  send(buffer: Uint8Array, lengths: Uint32Array, count: number, host: string, port: number): number;
}

type UdpSenderConstructor = new (fd: number) => BatchSender;

/** A native batch sender on `socket` (bound), or null where that is not possible. */
export function openBatchSender(socket: dgram.Socket): BatchSender | null {
  if (process.platform !== 'linux') return null;
  const fd = socketFd(socket);
  if (fd === null) return null;
  let UdpSender: UdpSenderConstructor | undefined;
  try {
    UdpSender = (loadAddon('vibepn_udp.node') as { UdpSender?: UdpSenderConstructor }).UdpSender;
  } catch {
    return null;
  }
  return UdpSender === undefined ? null : new UdpSender(fd);
}

function socketFd(socket: dgram.Socket): number | null {
  const fd = dgramHandle(socket)?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/** node's internal UDP handle of `socket` (not public API; shared with batch-receive.ts). */
export function dgramHandle(socket: dgram.Socket): Record<string, unknown> | undefined {
  // Socket.prototype._handle is deprecated (and warns); the same handle sits in the state object.
  const stateKey = Object.getOwnPropertySymbols(socket).find((key) => key.description === 'state symbol');
  if (stateKey === undefined) return undefined;
  const state = (socket as unknown as Record<symbol, { handle?: Record<string, unknown> | null } | undefined>)[stateKey];
  return state?.handle ?? undefined;
}
