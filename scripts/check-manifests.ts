/**
 * `npm run check:manifests`: renders the Kubernetes manifests (the base and every overlay under
 * deploy/kubernetes/overlays) with `kubectl kustomize`, validates every object against the Kubernetes API schemas
 * and the project's rules (scripts/manifest-rules.ts), and checks that the supergraph in the base is the current
 * composition of supergraph.docker.yaml. Works offline; exits non-zero naming each problem.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { manifestProblems, type KubeObject } from './manifest-rules.js';
import { composeSubgraphs, readSupergraphConfig } from './supergraph-config.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const deploy = path.join(root, 'deploy', 'kubernetes');

/** The objects `kubectl kustomize` renders from a kustomization folder. */
export async function render(folder: string): Promise<KubeObject[]> {
  const { stdout } = await promisify(execFile)('kubectl', ['kustomize', folder], { maxBuffer: 64 * 1024 * 1024 }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('kubectl is not installed: it renders the manifests (kubectl kustomize)');
    throw error;
  });
  return parseAllDocuments(stdout).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${folder}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const object = doc.toJS() as KubeObject | null;
    return object ? [object] : [];
  });
}

export async function kustomizations(): Promise<string[]> {
  const overlays = await readdir(path.join(deploy, 'overlays'));
  return [path.join(deploy, 'base'), ...overlays.sort().map((o) => path.join(deploy, 'overlays', o))];
}

async function supergraphProblems(): Promise<string[]> {
  const config = await readSupergraphConfig(path.join(root, 'supergraph.docker.yaml'));
  const result = await composeSubgraphs(config.subgraphs);
  if ('errors' in result) return result.errors;
  const committed = await readFile(path.join(deploy, 'base', 'supergraph.graphql'), 'utf8').catch(() => '');
  return committed === result.supergraphSdl
    ? []
    : ['deploy/kubernetes/base/supergraph.graphql is stale: run npm run compose -- --config supergraph.docker.yaml --out deploy/kubernetes/base/supergraph.graphql'];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  let failed = false;
  for (const folder of await kustomizations()) {
    const name = path.relative(root, folder);
    const objects = await render(folder);
    const problems = manifestProblems(objects);
    if (problems.length === 0) process.stdout.write(`${name}: ${objects.length} objects valid\n`);
    else {
      failed = true;
      process.stderr.write(`${name}: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}\n`).join('')}`);
    }
  }
  const stale = await supergraphProblems();
  for (const problem of stale) process.stderr.write(`${problem}\n`);
  if (stale.length === 0) process.stdout.write('deploy/kubernetes/base/supergraph.graphql is current\n');
  process.exit(failed || stale.length > 0 ? 1 : 0);
}
