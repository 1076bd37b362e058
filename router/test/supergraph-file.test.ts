import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SupergraphSdlHook } from '@apollo/gateway';
import { createLogger } from '@shop/common';
import { supergraphFromFile } from '../src/supergraph-file.js';

const log = createLogger('supergraph-file-test', 'silent');
let volume: string;
let cleanup: (() => Promise<void>) | undefined;

beforeEach(async () => {
  volume = await mkdtemp(path.join(tmpdir(), 'supergraph-file-'));
});
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
  await rm(volume, { recursive: true, force: true });
});

/** Starts the hook on `file` and records every schema it hands to the gateway. */
async function follow(file: string): Promise<{ initial: string; updates: string[] }> {
  const updates: string[] = [];
  const hook = supergraphFromFile(file, log, 20);
  const result = await hook({
    update: (sdl: string) => updates.push(sdl),
    healthCheck: async () => undefined,
    getDataSource: () => undefined as never,
  } as unknown as Parameters<SupergraphSdlHook>[0]);
  cleanup = result.cleanup;
  return { initial: result.supergraphSdl, updates };
}

/** Writes a version folder and renames a new `..data` link over the old one, as the kubelet updates a ConfigMap volume. */
async function publish(version: string, sdl: string): Promise<void> {
  await mkdir(path.join(volume, version));
  await writeFile(path.join(volume, version, 'supergraph.graphql'), sdl);
  await symlink(version, path.join(volume, '..data_tmp'));
  await rename(path.join(volume, '..data_tmp'), path.join(volume, '..data'));
}

describe('supergraph file', () => {
  it('reloads when a ConfigMap volume swaps its ..data link, though no event names the file', async () => {
    await publish('..2026_01_01_00_00_00.1', 'schema one');
    await symlink('..data/supergraph.graphql', path.join(volume, 'supergraph.graphql'));
    const { initial, updates } = await follow(path.join(volume, 'supergraph.graphql'));
    expect(initial).toBe('schema one');

    await publish('..2026_01_01_00_01_00.2', 'schema two');
    await rm(path.join(volume, '..2026_01_01_00_00_00.1'), { recursive: true });
    await expect.poll(() => updates, { timeout: 5_000 }).toEqual(['schema two']);
  });

  it('reloads a plain file replaced by rename, and ignores changes that leave its content as it was', async () => {
    const file = path.join(volume, 'supergraph.graphql');
    await writeFile(file, 'schema one');
    const { updates } = await follow(file);
    await writeFile(path.join(volume, 'unrelated.txt'), 'x');
    await writeFile(path.join(volume, 'next'), 'schema one');
    await rename(path.join(volume, 'next'), file);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(updates).toEqual([]);
    await writeFile(path.join(volume, 'next'), 'schema two');
    await rename(path.join(volume, 'next'), file);
    await expect.poll(() => updates, { timeout: 5_000 }).toEqual(['schema two']);
  });
});
