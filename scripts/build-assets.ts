/**
 * Second half of `npm run build` (after `tsc -b tsconfig.build.json`): copies the files the compiled code reads at run
 * time from beside its source (each subgraph's schema.graphql, found with `new URL('./schema.graphql', import.meta.url)`)
 * into dist/. What is read from the package root (migrations/, schema/supergraph.graphql) is found from dist/ as from
 * src/, one level below the package, so it stays where it is.
 */
import { cp, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const PACKAGES = ['packages/common', 'subgraphs/users', 'subgraphs/products', 'subgraphs/orders', 'subgraphs/inventory', 'router', 'dashboard'];

let copied = 0;
for (const pkg of PACKAGES) {
  const src = path.join(root, pkg, 'src');
  for (const entry of await readdir(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.endsWith('.ts')) continue;
    const from = path.join(entry.parentPath, entry.name);
    await cp(from, path.join(root, pkg, 'dist', path.relative(src, from)));
    copied += 1;
  }
}
process.stdout.write(`build: copied ${copied} run-time files beside the compiled code\n`);
