import { createServer } from 'node:http';
import { createLogger, createRedis, main, readQueueConfig, readServiceConfig } from '@shop/common';
import { createDashboard } from './server.js';

main('dashboard', async () => {
  // Operators only: bound to loopback unless HOST says otherwise (auth arrives with the security work).
  const config = readServiceConfig({ HOST: '127.0.0.1', ...process.env }, 4005);
  const queues = readQueueConfig();
  const log = createLogger('dashboard', config.logLevel);
  const redis = createRedis(queues.redisUrl, log, { name: 'dashboard' });
  const dashboard = createDashboard(redis, queues.prefix);
  const server = createServer(dashboard.app);
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  log.info({ url: `http://${config.host}:${config.port}/queues` }, 'queue dashboard ready');
  const stop = async () => {
    server.close();
    server.closeAllConnections();
    await dashboard.close();
    redis.disconnect();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
});
