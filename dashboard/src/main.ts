import { createLogger, createRedis, listen, main } from '@shop/common';
import { readDashboardConfig } from './config.js';
import { createDashboard } from './server.js';

main('dashboard', async () => {
  const config = readDashboardConfig();
  const log = createLogger('dashboard', config.logLevel);
  const redis = createRedis(config.queues.redisUrl, log, { name: 'dashboard' });
  const dashboard = createDashboard(redis, {
    prefix: config.queues.prefix,
    jwt: config.jwt,
    routerUrl: config.routerUrl,
    secureCookie: config.secureCookie,
    log,
  });
  const http = await listen(dashboard.app, config.port, config.host, '/queues');
  log.info({ url: http.url, routerUrl: config.routerUrl }, 'queue dashboard ready: administrators log in at /login');
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
