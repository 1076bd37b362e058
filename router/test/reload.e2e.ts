import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'graphql';
import { composeServices } from '@apollo/composition';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoShop } from '@shop/common';
import { graphql } from '@shop/common/testing';
import { COMMITTED_SUPERGRAPH, startRouter, startStack, type Stack } from './stack.js';

const shop = demoShop();
let dir: string;
let file: string;
let stack: Stack;
/** Operations run as the administrator, who may read everything. */
let admin: Record<string, string>;

/** The supergraph without the inventory subgraph: stock does not exist yet. */
async function supergraphWithoutInventory(): Promise<string> {
  const services = await Promise.all(
    (['users', 'products', 'orders'] as const).map(async (name) => ({
      name,
      url: `http://localhost/${name}`,
      typeDefs: parse(await readFile(new URL(`../../subgraphs/${name}/src/schema.graphql`, import.meta.url), 'utf8')),
    })),
  );
  const result = composeServices(services);
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.supergraphSdl;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'supergraph-'));
  file = path.join(dir, 'supergraph.graphql');
  await writeFile(file, await supergraphWithoutInventory());
  stack = await startStack({ supergraphPath: file });
  admin = await stack.auth('admin');
});
afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('router: supergraph reload', () => {
  it('picks up a changed supergraph file without a restart or a failed request', async () => {
    const product = shop.products[0]!;
    const stockQuery = `{ product(id: "${product.id}") { name stock } }`;
    const before = await graphql(stack.url, stockQuery, undefined, admin);
    expect(before.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');

    // Keep requests in flight across the swap; none of them may fail.
    let running = true;
    const failures: unknown[] = [];
    let completed = 0;
    const load = Array.from({ length: 4 }, async () => {
      while (running) {
        const res = await graphql(stack.url, `{ order(id: "${shop.orders[0]!.id}") { id items { product { name } } } }`, undefined, admin);
        if (res.errors || res.status !== 200) failures.push(res.errors ?? res.status);
        completed++;
      }
    });

    // Replace the file the way deploy tools do: write aside, then rename over it.
    const next = path.join(dir, 'supergraph.next');
    await writeFile(next, await readFile(COMMITTED_SUPERGRAPH, 'utf8'));
    await rename(next, file);

    const deadline = Date.now() + 10_000;
    let after = await graphql<{ product: { name: string; stock: number } }>(stack.url, stockQuery, undefined, admin);
    while (after.errors && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      after = await graphql(stack.url, stockQuery, undefined, admin);
    }
    running = false;
    await Promise.all(load);

    expect(after.errors).toBeUndefined();
    expect(after.data?.product).toEqual({ name: product.name, stock: product.stock });
    expect(completed).toBeGreaterThan(0);
    expect(failures).toEqual([]);
  });

  it('keeps serving the current schema when the new file does not parse', async () => {
    await writeFile(file, 'this is not a supergraph');
    await new Promise((r) => setTimeout(r, 500));
    const res = await graphql(stack.url, `{ product(id: "${shop.products[1]!.id}") { stock } }`, undefined, admin);
    expect(res.errors).toBeUndefined();
  });

  it('picks up a new supergraph in a Kubernetes ConfigMap volume, where only the ..data symlink changes', { timeout: 30_000 }, async () => {
    // The layout the kubelet writes: the files in a timestamped folder, `..data` pointing at it, and the file name a
    // link through `..data`. An update writes a new folder and renames a new link over `..data`: no event names the file.
    const volume = await mkdtemp(path.join(tmpdir(), 'configmap-'));
    const publish = async (version: string, sdl: string) => {
      await mkdir(path.join(volume, version));
      await writeFile(path.join(volume, version, 'supergraph.graphql'), sdl);
      await symlink(version, path.join(volume, '..data_tmp'));
      await rename(path.join(volume, '..data_tmp'), path.join(volume, '..data'));
    };
    await publish('..2026_01_01_00_00_00.000000001', await supergraphWithoutInventory());
    await symlink('..data/supergraph.graphql', path.join(volume, 'supergraph.graphql'));
    const urls = Object.fromEntries(Object.entries(stack.subgraphs).map(([name, s]) => [name, s.url]));
    const router = await startRouter(path.join(volume, 'supergraph.graphql'), urls, undefined, { RATE_LIMIT_MAX: '0' });
    try {
      const stockQuery = `{ product(id: "${shop.products[2]!.id}") { stock } }`;
      const before = await graphql(router.url, stockQuery, undefined, admin);
      expect(before.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');

      await publish('..2026_01_01_00_01_00.000000002', await readFile(COMMITTED_SUPERGRAPH, 'utf8'));
      await rm(path.join(volume, '..2026_01_01_00_00_00.000000001'), { recursive: true });

      const deadline = Date.now() + 10_000;
      let after = await graphql(router.url, stockQuery, undefined, admin);
      while (after.errors && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        after = await graphql(router.url, stockQuery, undefined, admin);
      }
      expect(after.errors).toBeUndefined();
      expect(after.data).toEqual({ product: { stock: shop.products[2]!.stock } });
    } finally {
      await router.stop();
      await rm(volume, { recursive: true, force: true });
    }
  });
});
