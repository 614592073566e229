import { describe, it, expect, afterEach } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Metrics } from '../../../src/metrics/metrics.js';
import { MetricsServer } from '../../../src/metrics/server.js';
import { memoryLogger } from '../../../src/log/logger.js';

interface Reply {
  status: number;
  body: string;
  contentType: string | undefined;
}

function get(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body, contentType: response.headers['content-type'] }),
      );
    });
    request.on('error', reject);
    request.end();
  });
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function startServer(isReady: () => boolean | string = () => true): Promise<{ server: MetricsServer; metrics: Metrics }> {
  const metrics = new Metrics({ processMetrics: false });
  const server = new MetricsServer({ host: '127.0.0.1', port: 0 }, metrics, isReady, memoryLogger().logger);
  await server.start();
  cleanups.push(() => server.close());
  return { server, metrics };
}

// The text forms of metrics_listen (":9000", "[::1]:9100", "", and the malformed ones) are the
// config loader's to parse: test/unit/config/load.test.ts. The server takes the parsed HostPort.
describe('MetricsServer listen address', () => {
  it('listens on every interface for host "" and logs the address as configured', async () => {
    const { logger, lines } = memoryLogger();
    const server = new MetricsServer({ host: '', port: 0 }, new Metrics({ processMetrics: false }), () => true, logger);
    await server.start();
    cleanups.push(() => server.close());
    expect((await get(server.port, '/healthz')).status).toBe(200);
    expect(lines.join('\n')).toContain(`serving /metrics, /healthz, /readyz on :0 (port ${server.port})`);
  });

  it('brackets an IPv6 host in its log line', async () => {
    const { logger, lines } = memoryLogger();
    const server = new MetricsServer({ host: '::1', port: 0 }, new Metrics({ processMetrics: false }), () => true, logger);
    try {
      await server.start();
    } catch {
      return; // no IPv6 loopback on this machine
    }
    cleanups.push(() => server.close());
    expect(lines.join('\n')).toContain(`on [::1]:0 (port ${server.port})`);
  });
});

describe('MetricsServer', () => {
  it('serves /metrics with the registry content type', async () => {
    const { server, metrics } = await startServer();
    metrics.connectionAttempt();
    expect(server.port).toBeGreaterThan(0);
    const reply = await get(server.port, '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.contentType).toBe(metrics.contentType);
    expect(reply.body).toContain('vibepn_peer_connection_attempts_total 1');
  });

  it('answers /healthz with ok', async () => {
    const { server } = await startServer();
    const reply = await get(server.port, '/healthz');
    expect(reply.status).toBe(200);
    expect(reply.body.trim()).toBe('ok');
  });

  it('answers /readyz from the injected check, with the reason when not ready', async () => {
    let state: boolean | string = 'waiting for TUN interface vpn-corp';
    const { server } = await startServer(() => state);
    let reply = await get(server.port, '/readyz');
    expect(reply.status).toBe(503);
    expect(reply.body.trim()).toBe('waiting for TUN interface vpn-corp');

    state = false;
    reply = await get(server.port, '/readyz');
    expect(reply.status).toBe(503);
    expect(reply.body.trim()).toBe('not ready');

    state = true;
    reply = await get(server.port, '/readyz');
    expect(reply.status).toBe(200);
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    const { server } = await startServer();
    const notFound = await get(server.port, '/nope');
    expect(notFound.status).toBe(404);
    expect(notFound.body).toContain('/metrics');
    expect((await get(server.port, '/metrics', 'POST')).status).toBe(405);
  });

  it('explains a port in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as AddressInfo).port;

    const listen = `127.0.0.1:${port}`;
    const server = new MetricsServer({ host: '127.0.0.1', port }, new Metrics({ processMetrics: false }), () => true, memoryLogger().logger);
    await expect(server.start()).rejects.toThrow(
      `metrics_listen ${listen}: address already in use (set daemon.metrics_listen to another port or "" to disable)`,
    );
    await server.close();
  });

  it('close() returns even with a keep-alive client connected', async () => {
    const { server } = await startServer();
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: server.port, path: '/healthz', agent }, (response) => {
          response.resume();
          response.on('end', resolve);
        })
        .on('error', reject);
    });
    await server.close();
    agent.destroy();
  });
});
