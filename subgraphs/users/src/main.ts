import { main, runSubgraph, startTelemetry } from '@shop/common';
import { users } from './server.js';

main('users', async () => {
  // First, so every span of the process is exported (a no-op without OTEL_EXPORTER_OTLP_ENDPOINT).
  await startTelemetry('users');
  await runSubgraph(users);
});
