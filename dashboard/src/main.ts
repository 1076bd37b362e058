import { createLogger, createRedis, listen, main, readQueueConfig, readServiceConfig } from '@shop/common';
import { createDashboard } from './server.js';

main('dashboard', async () => {
  // Operators only: bound to loopback unless HOST says otherwise (auth arrives with the security work).
  const config = readServiceConfig({ HOST: '127.0.0.1', ...process.env }, 4005);
  const queues = readQueueConfig();
  const log = createLogger('dashboard', config.logLevel);
  const redis = createRedis(queues.redisUrl, log, { name: 'dashboard' });
  const dashboard = createDashboard(redis, queues.prefix);
  const http = await listen(dashboard.app, config.port, config.host, '/queues');
  log.info({ url: http.url }, 'queue dashboard ready');
  const stop = async () => {
    // Requests in progress (a page, a retry an operator clicked) finish before the queues close.
    await http.close();
    await dashboard.close();
    redis.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
});
