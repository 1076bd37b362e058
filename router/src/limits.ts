import {
  GraphQLError,
  Kind,
  Lexer,
  Source,
  TokenKind,
  getNamedType,
  getNullableType,
  isAbstractType,
  isInterfaceType,
  isListType,
  isObjectType,
  type ASTNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLFormattedError,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';

import { LimitCode } from './error-codes.js';

export { LimitCode };

export interface OperationLimits {
  /** Deepest nesting of fields; a root field is level 1. */
  maxDepth: number;
  /** Highest estimated cost (see `operationCost`). */
  maxCost: number;
  /** Most aliased fields in one operation, counted through fragments. */
  maxAliases: number;
  /** Most top-level fields in one operation, counted through fragments. */
  maxRootFields: number;
  /** Most lexical tokens in one document (graphql's `parse` stops counting there). */
  maxTokens: number;
}

/** How many items a list is assumed to hold when the query does not say. */
export interface CostEstimates {
  /** A connection (a field with a `first` argument) without `first`: this graph's page default. */
  pageSize: number;
  /** Any other list (e.g. `Order.items`, `Order.statusHistory`). */
  listSize: number;
}

export const DEFAULT_COST_ESTIMATES: CostEstimates = { pageSize: 20, listSize: 10 };

/**
 * An operation over one of the limits. Apollo Server re-codes validation errors as
 * GRAPHQL_VALIDATION_FAILED; `limitErrorFormatter` restores the code from this class.
 */
export class OperationLimitError extends GraphQLError {
  constructor(
    readonly code: LimitCode,
    message: string,
    readonly limit: number,
    readonly actual: number,
    nodes?: readonly ASTNode[],
  ) {
    super(message, { nodes, extensions: { code, limit, actual } });
    this.name = 'OperationLimitError';
  }
}

function operationLabel(operation: OperationDefinitionNode): string {
  return operation.name ? `Operation ${operation.name.value}` : `This ${operation.operation}`;
}

/** `__schema` and `__type` are answered by the router from its own schema, never by a subgraph. */
function isIntrospectionRoot(field: FieldNode): boolean {
  return field.name.value === '__schema' || field.name.value === '__type';
}

/**
 * A per-document fold over selection sets where a fragment's value is computed once
 * (so fragments spread inside fragments cannot blow up the work) and a fragment
 * cycle counts 0 (graphql's NoFragmentsCycles rule reports it; this only has to stop).
 */
class FragmentFold<T> {
  private readonly memo = new Map<string, T>();
  private readonly visiting = new Set<string>();

  constructor(
    private readonly fragments: ReadonlyMap<string, FragmentDefinitionNode>,
    private readonly empty: T,
    private readonly compute: (fragment: FragmentDefinitionNode) => T,
  ) {}

  of(name: string): T {
    const known = this.memo.get(name);
    if (known !== undefined) return known;
    const fragment = this.fragments.get(name);
    if (!fragment || this.visiting.has(name)) return this.empty;
    this.visiting.add(name);
    const value = this.compute(fragment);
    this.visiting.delete(name);
    this.memo.set(name, value);
    return value;
  }
}

export function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}

/** Levels of nested fields: `{ order { user { name } } }` is 3. Introspection subtrees are not counted. */
export function operationDepth(operation: OperationDefinitionNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>): number {
  const fold: FragmentFold<number> = new FragmentFold(fragments, 0, (f) => depth(f.selectionSet));
  function depth(set: SelectionSetNode): number {
    let max = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (isIntrospectionRoot(selection)) continue;
        max = Math.max(max, 1 + (selection.selectionSet ? depth(selection.selectionSet) : 0));
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        max = Math.max(max, depth(selection.selectionSet));
      } else {
        max = Math.max(max, fold.of(selection.name.value));
      }
    }
    return max;
  }
  return depth(operation.selectionSet);
}

/** Aliased fields, each fragment counted as often as it is spread. */
export function operationAliases(operation: OperationDefinitionNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>): number {
  const fold: FragmentFold<number> = new FragmentFold(fragments, 0, (f) => aliases(f.selectionSet));
  function aliases(set: SelectionSetNode): number {
    let count = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        count += (selection.alias ? 1 : 0) + (selection.selectionSet ? aliases(selection.selectionSet) : 0);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        count += aliases(selection.selectionSet);
      } else {
        count += fold.of(selection.name.value);
      }
    }
    return count;
  }
  return aliases(operation.selectionSet);
}

/** Top-level fields once fragments and inline fragments are expanded (`__typename` included). */
export function operationRootFields(operation: OperationDefinitionNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>): number {
  const fold: FragmentFold<number> = new FragmentFold(fragments, 0, (f) => roots(f.selectionSet));
  function roots(set: SelectionSetNode): number {
    let count = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) count += 1;
      else if (selection.kind === Kind.INLINE_FRAGMENT) count += roots(selection.selectionSet);
      else count += fold.of(selection.name.value);
    }
    return count;
  }
  return roots(operation.selectionSet);
}

function fieldDefinition(parent: GraphQLNamedType | undefined, name: string): GraphQLField<unknown, unknown> | undefined {
  return parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[name] : undefined;
}

/**
 * A static estimate of the work an operation asks for: every field costs 1, and a
 * list field multiplies the cost of what it selects by how many items it may hold:
 * `first` for a connection (a field with a `first` argument; a variable is taken from
 * `variables`, then from its default, then `estimates.pageSize`), 1 for a connection's
 * `edges` (already counted by `first`) and `estimates.listSize` for any other list.
 * `__schema` and `__type` cost nothing (the router answers them from memory).
 *
 * A selection on an interface or union is costed per concrete type it may return: the
 * fields, inline fragments and fragments that apply to that type (fragments expanded), and
 * the most expensive type is the selection's cost. Each object is of one type, so
 * `... on A { x } ... on B { y }` costs the larger of the two, not their sum.
 *
 * `orders(first: 2) { edges { node { id } } }` costs 1 + 2 × (1 + 1 + 1) = 7.
 */
export function operationCost(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Readonly<Record<string, unknown>> = {},
  estimates: CostEstimates = DEFAULT_COST_ESTIMATES,
): number {
  return costOf(schema, operation, fragments, variables, estimates).cost;
}

/** The cost, and whether any variable's value went into it (if none did, it holds for any variables). */
function costOf(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Readonly<Record<string, unknown>>,
  estimates: CostEstimates,
): { cost: number; readsVariables: boolean } {
  let readsVariables = false;
  const variableDefaults = new Map<string, number>();
  for (const definition of operation.variableDefinitions ?? []) {
    if (definition.defaultValue?.kind === Kind.INT) variableDefaults.set(definition.variable.name.value, Number(definition.defaultValue.value));
  }

  function pageSize(field: FieldNode): number {
    const argument = field.arguments?.find((a) => a.name.value === 'first');
    let value: unknown;
    if (argument?.value.kind === Kind.INT) value = Number(argument.value.value);
    else if (argument?.value.kind === Kind.VARIABLE) {
      readsVariables = true;
      const name = argument.value.name.value;
      value = variables[name] ?? variableDefaults.get(name);
    }
    return typeof value === 'number' && Number.isFinite(value) ? Math.max(0, value) : estimates.pageSize;
  }

  function multiplier(field: FieldNode, parent: GraphQLNamedType | undefined, definition: GraphQLField<unknown, unknown> | undefined): number {
    if (!definition) return 1;
    if (definition.args.some((a) => a.name === 'first')) return pageSize(field);
    if (!isListType(getNullableType(definition.type))) return 1;
    return parent?.name.endsWith('Connection') ? 1 : estimates.listSize;
  }

  /** The concrete types a selection on `type` may meet; the type itself when it is concrete (or unknown). */
  function concreteTypes(type: GraphQLNamedType | undefined): readonly (GraphQLNamedType | undefined)[] {
    if (!type || !isAbstractType(type)) return [type];
    const possible = schema.getPossibleTypes(type);
    return possible.length > 0 ? possible : [type];
  }

  /** Whether a fragment with this type condition applies to an object of type `type`. */
  function applies(condition: string | undefined, type: GraphQLNamedType | undefined): boolean {
    if (condition === undefined || !type || condition === type.name) return true;
    const conditionType = schema.getType(condition);
    if (!conditionType || !isAbstractType(conditionType)) return false;
    // An abstract type with no known implementation is costed as itself: let any abstract condition count.
    return isObjectType(type) ? schema.isSubType(conditionType, type) : isAbstractType(type);
  }

  // A fragment's cost for one concrete type, computed once per (fragment, type); a cycle counts 0.
  const memo = new Map<string, number>();
  const visiting = new Set<string>();
  function fragmentCost(name: string, type: GraphQLNamedType | undefined): number {
    const key = `${name}\u0000${type?.name ?? ''}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    const fragment = fragments.get(name);
    if (!fragment || visiting.has(key) || !applies(fragment.typeCondition.name.value, type)) return 0;
    visiting.add(key);
    const value = costFor(fragment.selectionSet, type);
    visiting.delete(key);
    memo.set(key, value);
    return value;
  }

  /** What a selection set asks of one object of type `type` (concrete, or the parent when not known). */
  function costFor(set: SelectionSetNode, type: GraphQLNamedType | undefined): number {
    let total = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (isIntrospectionRoot(selection)) continue;
        const definition = fieldDefinition(type, selection.name.value);
        const children = selection.selectionSet ? cost(selection.selectionSet, definition && getNamedType(definition.type)) : 0;
        total += 1 + multiplier(selection, type, definition) * children;
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        if (applies(selection.typeCondition?.name.value, type)) total += costFor(selection.selectionSet, type);
      } else {
        total += fragmentCost(selection.name.value, type);
      }
    }
    return total;
  }

  /**
   * A selection set on a field of type `type`: the most expensive of the concrete types it may return. Computed once
   * per (selection set, type), so nested abstract types cost time in proportion to the document, not to its paths.
   */
  const costs = new Map<SelectionSetNode, Map<string, number>>();
  function cost(set: SelectionSetNode, type: GraphQLNamedType | undefined): number {
    let byType = costs.get(set);
    const known = byType?.get(type?.name ?? '');
    if (known !== undefined) return known;
    let max = 0;
    for (const concrete of concreteTypes(type)) max = Math.max(max, costFor(set, concrete));
    if (!byType) costs.set(set, (byType = new Map()));
    byType.set(type?.name ?? '', max);
    return max;
  }

  const root = schema.getRootType(operation.operation) ?? undefined;
  const total = cost(operation.selectionSet, root);
  return { cost: total, readsVariables };
}

/**
 * Costs that no variable enters, by operation (Apollo Server hands every request with the same text the same
 * parsed document), in that document, on that schema: the same operation with other variables costs the same.
 * Held weakly, so an evicted document takes its entry with it.
 */
const variableFreeCosts = new WeakMap<OperationDefinitionNode, { document: DocumentNode; schema: GraphQLSchema; cost: number }>();

/** The cost check, shared by the HTTP plugin and the WebSocket endpoint. */
export function checkCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
  maxCost: number,
): OperationLimitError | undefined {
  const known = variableFreeCosts.get(operation);
  let cost: number;
  if (known && known.document === document && known.schema === schema) {
    cost = known.cost;
  } else {
    const computed = costOf(schema, operation, fragmentsOf(document), variables ?? {}, DEFAULT_COST_ESTIMATES);
    cost = computed.cost;
    if (!computed.readsVariables) variableFreeCosts.set(operation, { document, schema, cost });
  }
  if (cost <= maxCost) return undefined;
  return new OperationLimitError(
    LimitCode.Cost,
    `${operationLabel(operation)} has an estimated cost of ${cost}; the limit is ${maxCost}. Ask for smaller pages ` +
      `(\`first\`) or fewer nested lists: each field costs 1 and a list multiplies what it selects by its \`first\` ` +
      `(${DEFAULT_COST_ESTIMATES.pageSize} when absent) or by ${DEFAULT_COST_ESTIMATES.listSize} for other lists.`,
    maxCost,
    cost,
    [operation],
  );
}

/** Validation rules for depth, aliases and root fields (they need no variables). */
export function limitRules(limits: Pick<OperationLimits, 'maxDepth' | 'maxAliases' | 'maxRootFields'>): ValidationRule[] {
  const perOperation =
    (check: (operation: OperationDefinitionNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>) => OperationLimitError | undefined): ValidationRule =>
    (context) => {
      let fragments: Map<string, FragmentDefinitionNode> | undefined;
      return {
        OperationDefinition(operation) {
          fragments ??= fragmentsOf(context.getDocument());
          const error = check(operation, fragments);
          if (error) context.reportError(error);
          return false;
        },
      };
    };
  return [
    perOperation((operation, fragments) => {
      const depth = operationDepth(operation, fragments);
      if (depth <= limits.maxDepth) return undefined;
      return new OperationLimitError(
        LimitCode.Depth,
        `${operationLabel(operation)} nests fields ${depth} levels deep; the limit is ${limits.maxDepth}. ` +
          'Select less deeply, or fetch the deeper data with a separate operation (e.g. by id).',
        limits.maxDepth,
        depth,
        [operation],
      );
    }),
    perOperation((operation, fragments) => {
      const aliases = operationAliases(operation, fragments);
      if (aliases <= limits.maxAliases) return undefined;
      return new OperationLimitError(
        LimitCode.Aliases,
        `${operationLabel(operation)} uses ${aliases} aliases; the limit is ${limits.maxAliases}. ` +
          'Use a list field instead of many aliased look-ups, or split the operation.',
        limits.maxAliases,
        aliases,
        [operation],
      );
    }),
    perOperation((operation, fragments) => {
      const roots = operationRootFields(operation, fragments);
      if (roots <= limits.maxRootFields) return undefined;
      return new OperationLimitError(
        LimitCode.RootFields,
        `${operationLabel(operation)} selects ${roots} top-level fields; the limit is ${limits.maxRootFields}. ` +
          'Split it into several operations.',
        limits.maxRootFields,
        roots,
        [operation],
      );
    }),
  ];
}

/** Tokens in a document as graphql's parser counts them (comments are not tokens); a lexing error stops the count. */
export function countTokens(body: string): number {
  const lexer = new Lexer(new Source(body));
  let count = 0;
  try {
    while (lexer.advance().kind !== TokenKind.EOF) count += 1;
  } catch {
    // Unlexable text: the parser reports it on its own.
  }
  return count;
}

// graphql 16 says "more that N tokens".
const TOKEN_LIMIT_MESSAGE = /Document contains more (?:than|that) \d+ tokens/;

/** graphql's "Document contains more than N tokens" syntax error as a TOO_MANY_TOKENS refusal. */
export function tokenLimitError(error: unknown, maxTokens: number, body?: string): OperationLimitError | undefined {
  if (!(error instanceof Error) || !TOKEN_LIMIT_MESSAGE.test(error.message)) return undefined;
  const source = body ?? (error instanceof GraphQLError ? error.source?.body : undefined);
  const tokens = source === undefined ? maxTokens + 1 : countTokens(source);
  return new OperationLimitError(
    LimitCode.Tokens,
    `The document has ${tokens} tokens; the limit is ${maxTokens}. Send a smaller operation: fewer fields, ` +
      'shorter inline arguments (use variables), no unused fragments.',
    maxTokens,
    tokens,
  );
}

function limitErrorIn(error: unknown): OperationLimitError | undefined {
  for (let e: unknown = error, hops = 0; e instanceof Error && hops < 5; e = (e as GraphQLError).originalError, hops += 1) {
    if (e instanceof OperationLimitError) return e;
  }
  return undefined;
}

/**
 * For Apollo Server's `formatError`: gives refused operations their limit's code back
 * (Apollo re-codes validation errors as GRAPHQL_VALIDATION_FAILED and the token limit
 * is a GRAPHQL_PARSE_FAILED syntax error).
 */
export function limitErrorFormatter(maxTokens: number) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const limit = limitErrorIn(error);
    if (limit) return { ...formatted, extensions: { ...formatted.extensions, code: limit.code, limit: limit.limit, actual: limit.actual } };
    if (formatted.extensions?.code !== 'GRAPHQL_PARSE_FAILED') return formatted;
    const tokens = tokenLimitError(limitSource(error), maxTokens);
    if (!tokens) return formatted;
    const { locations: _none, ...rest } = formatted;
    return { ...rest, message: tokens.message, extensions: { ...formatted.extensions, code: tokens.code, limit: tokens.limit, actual: tokens.actual } };
  };
}

/** The graphql syntax error under Apollo's wrapper (it carries the document's source). */
function limitSource(error: unknown): unknown {
  return error instanceof GraphQLError && error.originalError instanceof GraphQLError ? error.originalError : error;
}

/** Checks the cost of every HTTP (and WebSocket query/mutation) operation with the request's variables. */
export function costLimitPlugin<TContext extends BaseContext>(maxCost: number): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request }) {
          if (!operation) return;
          const error = checkCost(schema, document, operation, request.variables, maxCost);
          // 400 like every other refused document (Apollo answers a plugin's error with 500 otherwise).
          if (error) throw new GraphQLError(error.message, { nodes: error.nodes, originalError: error, extensions: { ...error.extensions, http: { status: 400 } } });
        },
      };
    },
  };
}
