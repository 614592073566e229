// HTTP endpoint for Prometheus and for supervisors (systemd, Kubernetes probes):
//   GET /metrics  text exposition of the daemon's registry
//   GET /healthz  200 while the process can answer at all
//   GET /readyz   200 when the daemon says it is ready, else 503 with the reason

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { Metrics } from './metrics.js';
import { formatHostPort, type HostPort } from '../netgraph/hostport.js';

/** true = ready; false or a reason text = not ready. */
export type ReadinessCheck = () => boolean | string;

export class MetricsServer {
  private readonly server: http.Server;
  /** As written in the config, for log lines and errors. */
  private readonly listenText: string;

  /** `listen` is daemon.metrics_listen, already validated by the config loader; host "" = every interface. */
  constructor(
    private readonly listen: HostPort,
    private readonly metrics: Metrics,
    private readonly isReady: ReadinessCheck,
    private readonly logger: Logger,
  ) {
    this.listenText = formatHostPort(listen.host, listen.port);
    this.server = http.createServer((request, response) => {
      void this.handle(request, response);
    });
  }

  /** The bound port (useful with port 0); throws before start(). */
  get port(): number {
    const bound = this.server.address();
    if (bound === null || typeof bound === 'string') throw new Error('metrics server is not listening');
    return (bound as AddressInfo).port;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => reject(this.describeListenError(error));
      this.server.once('error', onError);
      // No host means every interface (IPv6 and IPv4 where the system allows dual stack).
      this.server.listen({ host: this.listen.host === '' ? undefined : this.listen.host, port: this.listen.port }, () => {
        this.server.off('error', onError);
        // Errors after start (e.g. a socket fault) must not crash the daemon.
        this.server.on('error', (error) => this.logger.warn(`metrics server: ${error.message}`));
        this.logger.info(`serving /metrics, /healthz, /readyz on ${this.listenText} (port ${this.port})`);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      // Prometheus keeps connections alive; without this close() would wait for them.
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  private describeListenError(error: NodeJS.ErrnoException): Error {
    const fix = '(set daemon.metrics_listen to another port or "" to disable)';
    switch (error.code) {
      case 'EADDRINUSE':
        return new Error(`metrics_listen ${this.listenText}: address already in use ${fix}`);
      case 'EACCES':
        return new Error(`metrics_listen ${this.listenText}: permission denied ${fix}`);
      case 'EADDRNOTAVAIL':
        return new Error(`metrics_listen ${this.listenText}: no local interface has this address ${fix}`);
      default:
        return new Error(`metrics_listen ${this.listenText}: ${error.message} ${fix}`);
    }
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?', 1)[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return reply(response, 405, 'method not allowed: use GET\n', { Allow: 'GET, HEAD' });
    }
    switch (path) {
      case '/metrics':
        try {
          return reply(response, 200, await this.metrics.render(), { 'Content-Type': this.metrics.contentType });
        } catch (error) {
          this.logger.warn(`rendering metrics failed: ${(error as Error).message}`);
          return reply(response, 500, `rendering metrics failed: ${(error as Error).message}\n`);
        }
      case '/healthz':
        return reply(response, 200, 'ok\n');
      case '/readyz': {
        let ready: boolean | string;
        try {
          ready = this.isReady();
        } catch (error) {
          ready = `readiness check failed: ${(error as Error).message}`;
        }
        if (ready === true) return reply(response, 200, 'ready\n');
        return reply(response, 503, `${ready === false ? 'not ready' : ready}\n`);
      }
      default:
        return reply(response, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  }
}

function reply(
  response: http.ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  response.end(body);
}
