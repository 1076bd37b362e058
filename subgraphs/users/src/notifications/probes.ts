import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen, probeRoutes, serveMetrics, type Listening, type Logger, type ReadinessCheck } from '@shop/common';
import { WORKER_DEFAULT_PORT } from './config.js';

/** /health, /ready with the given checks, /metrics; 404 for anything else. */
function probeListener(checks: Record<string, ReadinessCheck>) {
  const probes = probeRoutes(checks);
  return (req: IncomingMessage, res: ServerResponse) =>
    void (async () => {
      if ((await probes(req, res)) || (await serveMetrics(req, res))) return;
      res.statusCode = 404;
      res.end();
    })();
}

/**
 * Serves the worker's probes and metrics on `port`, which must be free; without one, on `defaultPort` (4006), or on
 * a free port when another process (a second worker on the same machine) holds it: a worker in a container of its
 * own gets the port its manifest probes, and several on one machine do not fail each other.
 */
export async function serveProbes(
  checks: Record<string, ReadinessCheck>,
  address: { host: string; port: number | undefined },
  log: Logger,
  defaultPort = WORKER_DEFAULT_PORT,
): Promise<Listening> {
  const handler = probeListener(checks);
  if (address.port !== undefined) return listen(handler, address.port, address.host, '/health');
  try {
    return await listen(handler, defaultPort, address.host, '/health');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    log.warn({ port: defaultPort }, 'probe port in use (another worker on this machine?): serving the probes on a free port');
    return listen(handler, 0, address.host, '/health');
  }
}
