// What a QUIC endpoint needs from the network: a bound datagram socket. The real one is a UDP
// socket (udp-socket.ts); tests use an in-process network (memory-network.ts) so endpoints and
// whole daemons can talk through real quiche crypto without the kernel.
//
// Sending is shaped around quiche writing datagrams in place: the endpoint asks for buffer(),
// quiche writes one datagram into it, queue() claims it, and flush() ends the run. A socket may
// hold queued datagrams until flush() so a run to one destination leaves in one system call
// (UDP GSO); nothing is copied on the way.

export interface DatagramSocket {
  /**
   * Binds to an IP literal ("0.0.0.0", "::", "10.0.0.1"); port 0 picks a free port. Rejects with
   * an Error whose message names the address and what to change.
   */
  bind(host: string, port: number): Promise<void>;
  /** The bound port (the real one after binding port 0); 0 before bind(). */
  readonly port: number;
  /**
   * Called for every received datagram. `data` may be a view into a reused buffer, valid only
   * during the call: copy what must outlive it. Assign before bind().
   */
  onDatagram: (data: Uint8Array, host: string, port: number) => void;
  /** Space for the next outgoing datagram; valid until the next queue() or flush(). */
  buffer(): Uint8Array;
  /** The first `length` bytes of the latest buffer() are a datagram for host:port. */
  queue(length: number, host: string, port: number): void;
  /** Hands every queued datagram to the network. */
  flush(): void;
  /** Stops receiving and releases the port; later sends are dropped. Idempotent. */
  close(): Promise<void>;
}
