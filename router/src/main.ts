import { createLogger, listen, main, startTelemetry } from '@shop/common';
import { readRouterConfig } from './config.js';
import { createRouter } from './server.js';

main('router', async () => {
  // First, so the gateway's spans and ours are exported (a no-op without OTEL_EXPORTER_OTLP_ENDPOINT).
  const telemetry = await startTelemetry('router');
  const config = readRouterConfig();
  const log = createLogger('router', config.logLevel);
  const router = await createRouter(config, log);
  const http = await listen(router.listener, config.port, config.host);
  router.attachWebSockets(http.server);
  // Prometheus scrapes a port of its own, kept off the client port (and off the internet: loopback by default).
  const metrics = await listen(router.metricsListener, config.metricsPort, config.metricsHost, '/metrics');
  log.info({ url: http.url, metrics: metrics.url, supergraph: config.supergraphPath }, `router ready: open ${http.url} for Apollo Sandbox`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // Sockets first: HTTP close waits for open connections, and WebSockets are long-lived ones.
    await router.stop();
    await http.close();
    await metrics.close();
    await telemetry.shutdown();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
});
