import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parse, type GraphQLError } from 'graphql';
import { composeServices } from '@apollo/composition';

export interface SubgraphEntry {
  name: string;
  url: string;
  schemaFile: string;
}

export class SupergraphConfigError extends Error {
  override name = 'SupergraphConfigError';
}

/** Reads a rover-format supergraph config; schema paths resolve against the file's folder. */
export async function readSupergraphConfig(configPath: string): Promise<{ federationVersion: string; subgraphs: SubgraphEntry[] }> {
  const doc: unknown = parseYaml(await readFile(configPath, 'utf8'));
  const root = doc as { federation_version?: unknown; subgraphs?: Record<string, unknown> } | null;
  if (!root || typeof root.federation_version !== 'string' || !/^=?2\.\d+\.\d+$/.test(root.federation_version)) {
    throw new SupergraphConfigError(`${configPath}: federation_version must be like "=2.14.4"`);
  }
  if (!root.subgraphs || typeof root.subgraphs !== 'object') {
    throw new SupergraphConfigError(`${configPath}: "subgraphs" is missing`);
  }
  const base = path.dirname(configPath);
  const subgraphs = Object.entries(root.subgraphs).map(([name, value]) => {
    const entry = value as { routing_url?: unknown; schema?: { file?: unknown } } | null;
    if (typeof entry?.routing_url !== 'string') {
      throw new SupergraphConfigError(`${configPath}: subgraphs.${name}.routing_url is missing`);
    }
    if (typeof entry.schema?.file !== 'string') {
      throw new SupergraphConfigError(`${configPath}: subgraphs.${name}.schema.file is missing (only file schemas are supported)`);
    }
    return { name, url: entry.routing_url, schemaFile: path.resolve(base, entry.schema.file) };
  });
  return { federationVersion: root.federation_version.replace(/^=/, ''), subgraphs };
}

export type CompositionResult = { supergraphSdl: string; hints: number } | { errors: string[] };

/** Composes the subgraphs' schema files; errors are one readable line each. */
export async function composeSubgraphs(subgraphs: readonly SubgraphEntry[]): Promise<CompositionResult> {
  const services = [];
  for (const s of subgraphs) {
    const sdl = await readFile(s.schemaFile, 'utf8');
    try {
      services.push({ name: s.name, url: s.url, typeDefs: parse(sdl) });
    } catch (error) {
      return { errors: [`[GRAPHQL_PARSE_FAILED] ${s.name}: ${(error as GraphQLError).message}`] };
    }
  }
  const result = composeServices(services);
  if (result.errors) {
    return { errors: result.errors.map((e) => `[${(e.extensions?.code as string | undefined) ?? 'ERROR'}] ${e.message}`) };
  }
  const sdl = result.supergraphSdl;
  return { supergraphSdl: sdl.endsWith('\n') ? sdl : `${sdl}\n`, hints: result.hints.length };
}
