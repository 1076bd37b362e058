import { main, runSubgraph, startTelemetry } from '@shop/common';
import { orders } from './server.js';

main('orders', async () => {
  // First, so every span of the process is exported (a no-op without OTEL_EXPORTER_OTLP_ENDPOINT).
  await startTelemetry('orders');
  await runSubgraph(orders);
});
