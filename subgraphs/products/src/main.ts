import { main, runSubgraph, startTelemetry } from '@shop/common';
import { products } from './server.js';

main('products', async () => {
  // First, so every span of the process is exported (a no-op without OTEL_EXPORTER_OTLP_ENDPOINT).
  await startTelemetry('products');
  await runSubgraph(products);
});
