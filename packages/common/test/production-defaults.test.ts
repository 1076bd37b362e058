import { describe, expect, it } from 'vitest';
import { readSubgraphConfig } from '../src/service.js';

const SECRET = 'z'.repeat(40);

describe('demo data', () => {
  it('is loaded in development by default, in production only when SEED_DEMO_DATA asks for it', () => {
    expect(readSubgraphConfig('users', 4001, {}).seedDemoData).toBe(true);
    expect(readSubgraphConfig('users', 4001, { NODE_ENV: 'production', IDENTITY_SECRET: SECRET }).seedDemoData).toBe(false);
    expect(readSubgraphConfig('users', 4001, { NODE_ENV: 'production', IDENTITY_SECRET: SECRET, SEED_DEMO_DATA: 'true' }).seedDemoData).toBe(true);
    expect(readSubgraphConfig('users', 4001, { SEED_DEMO_DATA: 'false' }).seedDemoData).toBe(false);
  });
});
