import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { ROOT } from './processes.js';

async function version(pkg: string): Promise<string> {
  const file = path.join(ROOT, 'node_modules', pkg, 'package.json');
  return ((JSON.parse(await readFile(file, 'utf8')) as { version: string }).version);
}

/**
 * The commit measured, and whether files differed from it (others' work in progress in a shared checkout). The
 * bench's own output (results, BENCHMARKS.md), written as the run goes, does not count.
 */
function revision(): { commit: string; uncommittedChanges: boolean } {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  try {
    return { commit: git('rev-parse', '--short', 'HEAD'), uncommittedChanges: git('status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/results', ':!BENCHMARKS.md') !== '' };
  } catch {
    return { commit: 'unknown', uncommittedChanges: false };
  }
}

/** What the numbers were measured on. */
export async function machine() {
  return {
    ...revision(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
    packages: Object.fromEntries(
      await Promise.all(
        ['@apollo/gateway', '@apollo/server', '@apollo/subgraph', 'graphql', 'graphql-ws', 'bullmq', 'autocannon', '@electric-sql/pglite', 'pg'].map(
          async (p) => [p, await version(p).catch(() => 'absent')] as const,
        ),
      ),
    ),
  };
}
