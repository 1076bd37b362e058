import { readFileSync } from 'node:fs';
import { GraphQLError, Kind, getIntrospectionQuery, getOperationAST, parse, specifiedRules, validate, type GraphQLFormattedError } from 'graphql';
import { Supergraph } from '@apollo/federation-internals';
import { describe, expect, it } from 'vitest';
import { formatError } from '@shop/common';
import { readRouterConfig } from '../src/config.js';
import { routerPublicCodes } from '../src/error-codes.js';
import {
  LimitCode,
  checkCost,
  countTokens,
  fragmentsOf,
  limitErrorFormatter,
  limitRules,
  operationAliases,
  operationCost,
  operationDepth,
  operationRootFields,
  tokenLimitError,
} from '../src/limits.js';
import { composeServices } from '@apollo/composition';
import { COMMITTED_SUPERGRAPH } from './stack.js';
import { MEDIA_SCHEMA, THREE_LEVELS } from './fixtures/media.js';
import { ORDER_DETAILS } from './fixtures/operations.js';

const schema = Supergraph.build(readFileSync(COMMITTED_SUPERGRAPH, 'utf8')).apiSchema().toGraphQLJSSchema();
const limits = readRouterConfig([], {}).limits;

const ORDERS_PAGE = `query($n: Int) { orders(first: $n) { edges { node {
  id user { name } items { quantity product { name price { amount } stock shippingEstimate { amount } } }
} } } }`;

function measure(query: string, variables: Record<string, unknown> = {}) {
  const document = parse(query);
  const operation = getOperationAST(document)!;
  const fragments = fragmentsOf(document);
  return {
    depth: operationDepth(operation, fragments),
    aliases: operationAliases(operation, fragments),
    rootFields: operationRootFields(operation, fragments),
    cost: operationCost(schema, operation, fragments, variables),
  };
}

/** Codes of the errors graphql's own rules plus the limits report. */
function codesOf(query: string, own = limits): unknown[] {
  return validate(schema, parse(query), [...specifiedRules, ...limitRules(own)]).map((e) => e.extensions.code);
}

describe('limit defaults', () => {
  it('are 12 deep, cost 5000, 30 aliases, 10 root fields, 5000 tokens, and come from the environment', () => {
    expect(limits).toEqual({ maxDepth: 12, maxCost: 5000, maxAliases: 30, maxRootFields: 10, maxTokens: 5000 });
    const own = readRouterConfig([], { MAX_QUERY_DEPTH: '4', MAX_QUERY_COST: '50', MAX_ALIASES: '0', MAX_ROOT_FIELDS: '2', MAX_TOKENS: '200' });
    expect(own.limits).toEqual({ maxDepth: 4, maxCost: 50, maxAliases: 0, maxRootFields: 2, maxTokens: 200 });
    expect(() => readRouterConfig([], { MAX_QUERY_DEPTH: 'deep' })).toThrow(/MAX_QUERY_DEPTH/);
    expect(() => readRouterConfig([], { MAX_TOKENS: '10' })).toThrow(/MAX_TOKENS/);
  });

  it('let the operations the tests run and the introspection query (Apollo Sandbox) pass', () => {
    for (const query of [ORDER_DETAILS, ORDERS_PAGE, getIntrospectionQuery()]) {
      expect(codesOf(query)).toEqual([]);
      const document = parse(query, { maxTokens: limits.maxTokens });
      expect(checkCost(schema, document, getOperationAST(document)!, { n: 20 }, limits.maxCost)).toBeUndefined();
    }
    expect(measure(ORDER_DETAILS)).toMatchObject({ depth: 5, aliases: 0, rootFields: 1, cost: 192 });
    expect(measure(ORDERS_PAGE, { n: 20 })).toMatchObject({ depth: 7, cost: 1721 });
  });

  it('let every example operation of the README pass', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const examples = /## Example queries[\s\S]*?```graphql\n([\s\S]*?)```/.exec(readme)![1]!;
    const document = parse(examples, { maxTokens: limits.maxTokens });
    const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
    expect(operations.length).toBeGreaterThanOrEqual(6);
    expect(validate(schema, document, limitRules(limits))).toEqual([]);
    for (const operation of operations) {
      expect(checkCost(schema, document, operation, {}, limits.maxCost)).toBeUndefined();
    }
  });
});

describe('depth', () => {
  it('counts field levels through fragments and inline fragments, not introspection', () => {
    expect(measure('{ order(id: "1") { user { name } } }').depth).toBe(3);
    expect(measure('{ order(id: "1") { ...O } } fragment O on Order { items { product { ... on Product { name } } } }').depth).toBe(4);
    expect(measure('{ __schema { types { fields { type { ofType { ofType { name } } } } } } __typename }').depth).toBe(1);
  });

  it('refuses an operation deeper than the limit with QUERY_TOO_DEEP, naming both numbers', () => {
    const query = 'query Deep { user(id: "1") { orders { edges { node { user { orders { edges { node { id } } } } } } } } }';
    expect(measure(query).depth).toBe(9);
    const [error] = validate(schema, parse(query), [...specifiedRules, ...limitRules({ ...limits, maxDepth: 8 })]);
    expect(error?.extensions).toMatchObject({ code: LimitCode.Depth, limit: 8, actual: 9 });
    expect(error?.message).toMatch(/^Operation Deep nests fields 9 levels deep; the limit is 8\./);
  });

  it('stops on fragment cycles (graphql reports the cycle itself)', () => {
    const query = '{ order(id: "1") { ...A } } fragment A on Order { user { orders { edges { node { ...B } } } } } fragment B on Order { ...A }';
    expect(measure(query)).toMatchObject({ depth: 5, aliases: 0, rootFields: 1 });
    const errors = validate(schema, parse(query), [...specifiedRules, ...limitRules(limits)]);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/Cannot spread fragment "A" within itself via "B"/)]);
  });
});

describe('aliases and root fields', () => {
  it('counts aliases as often as their fragment is spread', () => {
    const query = '{ a: order(id: "1") { ...F } b: order(id: "2") { ...F } } fragment F on Order { x: id y: status }';
    expect(measure(query)).toMatchObject({ aliases: 6, rootFields: 2 });
    expect(codesOf(query, { ...limits, maxAliases: 5 })).toEqual([LimitCode.Aliases]);
    expect(codesOf(query, { ...limits, maxAliases: 6 })).toEqual([]);
  });

  it('counts root fields after expanding fragments', () => {
    const query = '{ ...Q ... on Query { c: order(id: "3") { id } } __typename } fragment Q on Query { a: order(id: "1") { id } b: user(id: "2") { id } }';
    expect(measure(query).rootFields).toBe(4);
    expect(codesOf(query, { ...limits, maxRootFields: 3 })).toEqual([LimitCode.RootFields]);
  });

  it('takes fragments spread in fragments in linear time', () => {
    // 2^20 expanded aliases, written in 21 fragments: counted without expanding them.
    const fragments = Array.from({ length: 20 }, (_, i) => `fragment F${i} on Order { ...F${i + 1} ...F${i + 1} }`).join('\n');
    const query = `{ order(id: "1") { ...F0 } } ${fragments} fragment F20 on Order { a: id }`;
    const started = performance.now();
    expect(measure(query).aliases).toBe(2 ** 20);
    expect(performance.now() - started).toBeLessThan(100);
  });
});

describe('cost', () => {
  it('multiplies a connection by first, from a literal, a variable, its default or 20', () => {
    const page = (first: string) => `query($n: Int = 3) { orders${first} { edges { node { id } } } }`;
    expect(measure(page('(first: 2)')).cost).toBe(1 + 2 * 3);
    expect(measure(page('(first: $n)'), { n: 5 }).cost).toBe(1 + 5 * 3);
    expect(measure(page('(first: $n)')).cost).toBe(1 + 3 * 3);
    expect(measure(page('')).cost).toBe(1 + 20 * 3);
    expect(measure('query($m: Int) { orders(first: $m) { edges { node { id } } } }').cost).toBe(1 + 20 * 3);
  });

  it('counts other lists as 10, edges once, and fragments with their type', () => {
    expect(measure('{ order(id: "1") { items { quantity } statusHistory { status } } }').cost).toBe(1 + (1 + 10) + (1 + 10));
    const viaFragment = measure('{ orders(first: 2) { ...Page } } fragment Page on OrderConnection { edges { node { ... on Order { items { quantity } } } } }');
    expect(viaFragment.cost).toBe(1 + 2 * (1 + 1 + (1 + 10)));
  });

  it('refuses an expensive operation with QUERY_TOO_COMPLEX, with the measured cost', () => {
    const query = `query Expensive($n: Int) { orders(first: $n) { edges { node {
      items { product { name } } user { orders(first: 100) { edges { node { id } } } }
    } } } }`;
    const document = parse(query);
    const operation = getOperationAST(document)!;
    expect(checkCost(schema, document, operation, { n: 1 }, limits.maxCost)).toBeUndefined();
    const error = checkCost(schema, document, operation, { n: 100 }, limits.maxCost);
    expect(error?.extensions).toMatchObject({ code: LimitCode.Cost, limit: 5000, actual: 32501 });
    expect(error?.message).toMatch(/^Operation Expensive has an estimated cost of 32501; the limit is 5000\./);
  });

  it('gives every request the cost of its own variables, also through fragments, and of its own document', () => {
    const query = `query Paged($n: Int) { orders(first: 2) { ...Page } }
      fragment Page on OrderConnection { edges { node { user { orders(first: $n) { edges { node { id } } } } } } }`;
    const document = parse(query);
    const operation = getOperationAST(document)!;
    const actualFor = (n: number) => checkCost(schema, document, operation, { n }, 100)?.extensions.actual;
    // 1 + 2 × (1 + 1 + (1 + 1 + n × 3))
    expect(actualFor(1)).toBe(undefined);
    expect(actualFor(100)).toBe(1 + 2 * (1 + 1 + (1 + 1 + 100 * 3)));
    expect(actualFor(1)).toBe(undefined);

    // No variable in the cost: the same answer every time, and a document with other fragments is costed anew.
    const fixed = parse('query Fixed { orders(first: 50) { ...F } } fragment F on OrderConnection { edges { node { id } } }');
    const fixedOperation = getOperationAST(fixed)!;
    for (let i = 0; i < 3; i++) expect(checkCost(schema, fixed, fixedOperation, { x: i }, 100)?.extensions.actual).toBe(1 + 50 * 3);
    const wider = parse('fragment F on OrderConnection { edges { node { id items { quantity } } } }');
    const other = { ...fixed, definitions: [fixedOperation, ...wider.definitions] };
    expect(checkCost(schema, other, fixedOperation, {}, 100)?.extensions.actual).toBe(1 + 50 * (1 + 1 + 1 + (1 + 10)));
    expect(checkCost(schema, fixed, fixedOperation, {}, 100)?.extensions.actual).toBe(1 + 50 * 3);
  });

  it('costs a polymorphic selection per concrete type: the most expensive type, not the sum of the type conditions', () => {
    const result = composeServices([{ name: 'media', url: 'http://127.0.0.1:1/graphql', typeDefs: parse(MEDIA_SCHEMA) }]);
    const media = Supergraph.build(result.supergraphSdl!).apiSchema().toGraphQLJSSchema();
    const cost = (query: string, variables: Record<string, unknown> = {}) => {
      const document = parse(query);
      return operationCost(media, getOperationAST(document)!, fragmentsOf(document), variables);
    };
    // One list of Media: a Book costs 1 + 1, a Movie 1 + 1 + 1; the list costs 1 + 20 × 3, not 1 + 20 × 5.
    expect(cost('{ media { ... on Book { id pages } ... on Movie { id title minutes } } }')).toBe(1 + 20 * 3);
    // Fields on the interface apply to every type, beside each type's own; a fragment on the interface too.
    expect(cost('{ media { id ... on Book { pages } ... on Album { tracks title } ...M } } fragment M on Media { title }')).toBe(1 + 20 * 4);
    // A fragment on one type, spread where another is selected, adds nothing to that type.
    expect(cost('{ media { ... on Movie { ...B minutes } } } fragment B on Book { pages title }')).toBe(1 + 20 * 1 + 20 * 0);
    // Three levels under lists: 3,331 with first 10 (summing the conditions made it 83,791), refused at first 100.
    expect(cost(THREE_LEVELS, { first: 10 })).toBe(3331);
    expect(cost(THREE_LEVELS, { first: 10 })).toBeLessThan(limits.maxCost);
    const document = parse(THREE_LEVELS);
    expect(checkCost(media, document, getOperationAST(document)!, { first: 100 }, limits.maxCost)?.extensions).toMatchObject({
      code: LimitCode.Cost,
      actual: 33301,
    });
  });

  it('costs nested polymorphic selections in time proportional to the document', () => {
    // 12 levels of an interface with 3 types and fields on the interface: 3^12 paths, each (selection, type) once.
    let query = 'id';
    for (let i = 0; i < 12; i++) query = `id title ... on Book { pages } related { ${query} }`;
    const result = composeServices([{ name: 'media', url: 'http://127.0.0.1:1/graphql', typeDefs: parse(MEDIA_SCHEMA) }]);
    const media = Supergraph.build(result.supergraphSdl!).apiSchema().toGraphQLJSSchema();
    const document = parse(`{ media(first: 1) { ${query} } }`);
    const started = performance.now();
    expect(operationCost(media, getOperationAST(document)!, fragmentsOf(document))).toBeGreaterThan(10 ** 12);
    expect(performance.now() - started).toBeLessThan(100);
  });

  it('terminates on fragment cycles', () => {
    const query = '{ orders { ...A } } fragment A on OrderConnection { edges { node { user { orders { ...A } } } } }';
    expect(measure(query).cost).toBe(1 + 20 * (1 + 1 + 1 + (1 + 20 * 0)));
  });
});

describe('tokens', () => {
  it('counts tokens as the parser does and names both numbers', () => {
    expect(countTokens('{ a(x: 1) { b } } # comment')).toBe(11);
    expect(() => parse('{ a(x: 1) { b } } # comment', { maxTokens: 11 })).not.toThrow();
    expect(() => parse('{ a(x: 1) { b } } # comment', { maxTokens: 10 })).toThrow(/Document contains more/);
    const query = `{ ${Array.from({ length: 300 }, () => '__typename').join(' ')} }`;
    let thrown: unknown;
    try {
      parse(query, { maxTokens: 200 });
    } catch (error) {
      thrown = error;
    }
    const error = tokenLimitError(thrown, 200);
    expect(error?.extensions).toMatchObject({ code: LimitCode.Tokens, limit: 200, actual: 302 });
    expect(error?.message).toMatch(/^The document has 302 tokens; the limit is 200\./);
    expect(tokenLimitError(new GraphQLError('Syntax Error: Unexpected Name "x".'), 200)).toBeUndefined();
  });
});

describe('error codes through Apollo Server formatting', () => {
  it('restore the limit code Apollo replaces and survive production masking', () => {
    const [limitError] = validate(schema, parse('{ a: __typename }'), limitRules({ ...limits, maxAliases: 0 }));
    // What Apollo Server hands formatError for a failed validation rule.
    const wrapped = new GraphQLError(limitError!.message, { originalError: limitError, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    const formatted: GraphQLFormattedError = { message: wrapped.message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } };
    const production = formatError(true, routerPublicCodes());
    const result = production(limitErrorFormatter(limits.maxTokens)(formatted, wrapped));
    expect(result).toEqual({ message: limitError!.message, extensions: { code: LimitCode.Aliases, limit: 0, actual: 1 } });
    expect(production({ message: 'boom', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }).extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});
