import { defineConfig } from 'vitest/config';

/** `npm run test:browser`: the web app in Chromium against the real stack (test/browser/*.browser.ts). */
export default defineConfig({
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['test/browser/**/*.browser.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 180_000,
    hookTimeout: 240_000,
    env: { LOG_LEVEL: 'silent' },
  },
});
