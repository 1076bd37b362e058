import { defineConfig } from 'vitest/config';

export default defineConfig({
  // graphql ships CommonJS and ESM builds; the federation packages load the CommonJS one, so
  // everything must, or schemas from one copy are rejected by the other ("another realm"). Node does
  // this by itself; Vite would pick the ESM build for files it transforms.
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['**/test/**/*.test.ts', '**/test/**/*.e2e.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: { LOG_LEVEL: 'silent' },
  },
});
