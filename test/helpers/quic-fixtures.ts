// Shared helpers for the QUIC tests: throwaway self-signed certificates and pairs of endpoints,
// on loopback UDP or on an in-memory network. Not a test file itself (vitest only collects *.test.ts).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { memoryLogger } from '../../src/log/logger.js';
import { QuicEndpoint, type QuicEndpointOptions } from '../../src/quic/endpoint.js';
import type { QuicConnection, QuicCloseInfo } from '../../src/quic/connection.js';
import type { MemoryNetwork } from '../../src/quic/memory-network.js';
import type { HostPort } from '../../src/netgraph/hostport.js';

export interface TestIdentity {
  certPem: string;
  keyPem: string;
  certDer: Uint8Array;
}

// openssl rather than @peculiar/x509: the latter needs a reflect-metadata polyfill that is not
// installed. ECDSA P-256, self-signed, valid for a day — what the daemon generates.
export function makeIdentity(commonName: string): TestIdentity {
  const dir = mkdtempSync(join(tmpdir(), 'vibepn-quic-test-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-subj', `/CN=${commonName}`, '-days', '1', '-keyout', keyFile, '-out', certFile],
      { stdio: 'ignore' },
    );
    const certPem = readFileSync(certFile, 'utf8');
    return { certPem, keyPem: readFileSync(keyFile, 'utf8'), certDer: new Uint8Array(new X509Certificate(certPem).raw) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Endpoints created through this are closed by closeAll() (call it in afterEach). */
export class EndpointPool {
  private readonly endpoints: QuicEndpoint[] = [];
  /** Each endpoint's log lines, live; print them when a test fails in a puzzling way. */
  readonly logs: string[][] = [];

  async create(identity: TestIdentity, options: Partial<QuicEndpointOptions> = {}): Promise<QuicEndpoint> {
    const { logger, lines } = memoryLogger('quic', 'debug');
    const endpoint = await QuicEndpoint.listen({
      listen: '127.0.0.1:0',
      certPem: identity.certPem,
      keyPem: identity.keyPem,
      logger,
      ...options,
    });
    this.logs.push(lines);
    this.endpoints.push(endpoint);
    return endpoint;
  }

  /** An endpoint on `network`, listening on host:51820 unless `options` says otherwise. */
  createOnNetwork(
    network: MemoryNetwork,
    host: string,
    identity: TestIdentity,
    options: Partial<QuicEndpointOptions> = {},
  ): Promise<QuicEndpoint> {
    return this.create(identity, { listen: { host, port: 51820 }, socket: network.socket(host), ...options });
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.endpoints.splice(0).map((endpoint) => endpoint.close()));
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

export function established(connection: QuicConnection): Promise<void> {
  return new Promise((resolve, reject) => {
    connection.onEstablished = () => resolve();
    connection.onClose = (info) => reject(new Error(`closed before established: ${JSON.stringify(info)}`));
  });
}

export function closed(connection: QuicConnection): Promise<QuicCloseInfo> {
  return new Promise((resolve) => {
    connection.onClose = resolve;
  });
}

export function nextConnection(endpoint: QuicEndpoint): Promise<QuicConnection> {
  return new Promise((resolve) => {
    endpoint.onConnection = resolve;
  });
}

/**
 * Dials b from a (at `target`, by default b's port on loopback) and waits until both ends have
 * completed the handshake.
 */
export async function connectPair(
  a: QuicEndpoint,
  b: QuicEndpoint,
  target?: HostPort | string,
): Promise<{ client: QuicConnection; server: QuicConnection }> {
  const accepted = nextConnection(b);
  const host = b.localAddress.startsWith('[') ? '[::1]' : '127.0.0.1';
  const client = a.connect(target ?? `${host}:${b.port}`);
  const [server] = await withTimeout(Promise.all([accepted, established(client)]), 5000, 'handshake');
  return { client, server };
}
