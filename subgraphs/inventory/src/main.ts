import { main, runSubgraph, startTelemetry } from '@shop/common';
import { inventory } from './server.js';

main('inventory', async () => {
  // First, so every span of the process is exported (a no-op without OTEL_EXPORTER_OTLP_ENDPOINT).
  await startTelemetry('inventory');
  await runSubgraph(inventory);
});
