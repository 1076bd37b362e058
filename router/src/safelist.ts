import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GraphQLError, Kind, parse } from 'graphql';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { ConfigError } from '@shop/common';

import { RouterErrorCode } from './error-codes.js';

export const OPERATION_NOT_IN_SAFELIST = RouterErrorCode.OperationNotInSafelist;

/** One operation of an Apollo persisted query manifest (what `@apollo/generate-persisted-query-manifest` writes). */
interface ManifestOperation {
  id: string;
  body: string;
  name?: string;
  type?: string;
}

export function queryHash(query: string): string {
  return createHash('sha256').update(query).digest('hex');
}

/** The names of the operations a document defines; none when it does not parse (it can then never run either). */
function operationNamesOf(body: string): string[] {
  try {
    return parse(body).definitions.flatMap((d) => (d.kind === Kind.OPERATION_DEFINITION && d.name ? [d.name.value] : []));
  } catch {
    return [];
  }
}

/**
 * Safelist mode: the router runs only the operations of a persisted query
 * manifest. Clients send a registered operation's id (the SHA-256 of its
 * text, as an automatic persisted query) or its exact text; anything else is
 * refused before a subgraph is called.
 */
export class Safelist {
  private readonly bodies = new Map<string, string>();
  /** The names of the registered operations: the only `operation` label values of the metrics in safelist mode. */
  readonly operationNames = new Set<string>();

  constructor(operations: Iterable<{ id: string; body: string }>) {
    for (const { id, body } of operations) {
      // An id that does not match its body could never be sent as text; catch the mistake at start.
      if (queryHash(body) !== id) throw new ConfigError(`Safelist operation ${id} does not match the SHA-256 of its body`);
      this.bodies.set(id, body);
      for (const name of operationNamesOf(body)) this.operationNames.add(name);
    }
  }

  static fromManifestFile(path: string): Safelist {
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new ConfigError(`PERSISTED_QUERIES_SAFELIST: cannot read ${path}: ${(error as Error).message}`);
    }
    const { format, version, operations } = (manifest ?? {}) as { format?: unknown; version?: unknown; operations?: unknown };
    if (format !== 'apollo-persisted-query-manifest' || version !== 1 || !Array.isArray(operations)) {
      throw new ConfigError(`PERSISTED_QUERIES_SAFELIST: ${path} is not an apollo-persisted-query-manifest, version 1`);
    }
    for (const op of operations as ManifestOperation[]) {
      if (typeof op?.id !== 'string' || typeof op.body !== 'string') {
        throw new ConfigError(`PERSISTED_QUERIES_SAFELIST: every operation in ${path} needs a string id and body`);
      }
    }
    return new Safelist(operations as ManifestOperation[]);
  }

  get size(): number {
    return this.bodies.size;
  }

  allows(query: string): boolean {
    return this.bodies.has(queryHash(query));
  }

  bodyOf(id: string): string | undefined {
    return this.bodies.get(id);
  }

  /** The persisted-query store in safelist mode: lookups come from the manifest, registrations are ignored. */
  cache(): { get(id: string): Promise<string | undefined>; set(): Promise<void>; delete(): Promise<boolean> } {
    return {
      // Apollo Server prefixes its persisted-query keys with `apq:`.
      get: async (key) => this.bodyOf(key.replace(/^apq:/, '')),
      set: async () => {},
      delete: async () => false,
    };
  }

  refusal(): GraphQLError {
    return new GraphQLError(
      'This operation is not in the safelist: the router runs only registered operations. Register it in the persisted query manifest and deploy it to the router.',
      { extensions: { code: OPERATION_NOT_IN_SAFELIST, http: { status: 400 } } },
    );
  }

  /**
   * Refuses an operation whose text is not registered. Apollo Server fails a
   * request with a 500 when an earlier hook throws, so this is the first one
   * that can answer with the error; the token limit bounds the parse before it.
   */
  plugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
    return {
      requestDidStart: async () => ({
        didResolveOperation: async ({ queryHash: hash }) => {
          if (!this.bodies.has(hash)) throw this.refusal();
        },
      }),
    };
  }
}
