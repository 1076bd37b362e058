import {
  GraphQLBoolean,
  GraphQLError,
  Kind,
  getOperationAST,
  getVariableValues,
  valueFromAST,
  type DirectiveNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type InlineFragmentNode,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';

/** Labels the router gives `@defer` fragments that have none; never shown to clients. */
const AUTO_LABEL_PREFIX = '__router_defer_';

/** An operation ready for the defer-enabled planner. */
export interface DeferOperation {
  /**
   * The operation alone, with fragment spreads inlined, every `@defer` that applies labelled and every one whose
   * `if` is false removed: the planner's labels then name each deferred fragment, so each part of the plan can be
   * matched to its fragment.
   */
  document: OperationDefinitionNode;
  /** Every label, in document order. */
  labels: string[];
  /** Labels the client chose (the others are the router's own). */
  clientLabels: ReadonlySet<string>;
}

function deferDirectiveOf(node: { directives?: readonly DirectiveNode[] | undefined }): DirectiveNode | undefined {
  return node.directives?.find((d) => d.name.value === 'defer');
}

/** The directive's `label` when it is written as a string. */
function labelOf(directive: DirectiveNode): string | undefined {
  const label = directive.arguments?.find((a) => a.name.value === 'label')?.value;
  return label?.kind === Kind.STRING ? label.value : undefined;
}

function conditionOf(directive: DirectiveNode, variables: Record<string, unknown>): boolean {
  const condition = directive.arguments?.find((a) => a.name.value === 'if')?.value;
  if (!condition) return true;
  const value: unknown = valueFromAST(condition, GraphQLBoolean, variables);
  return value !== false;
}

function labelled(label: string): DirectiveNode {
  return {
    kind: Kind.DIRECTIVE,
    name: { kind: Kind.NAME, value: 'defer' },
    arguments: [{ kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: 'label' }, value: { kind: Kind.STRING, value: label } }],
  };
}

/** The operation's variables as the executor sees them, or undefined when they do not coerce (the gateway reports that). */
export function coercedVariables(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {});
  return coerced.errors ? undefined : coerced.coerced;
}

/**
 * Which of the operation's `@defer(if: $variable)` apply, as a string for a cache key ("" when none depends on a
 * variable). Fragments are followed, so a spread used twice counts twice, as in `prepareDeferOperation`.
 */
export function deferConditionsKey(operation: OperationDefinitionNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>, variables: Record<string, unknown>): string {
  let key = '';
  const visit = (set: SelectionSetNode, depth: number): void => {
    if (depth > 100) return;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.selectionSet) visit(selection.selectionSet, depth + 1);
        continue;
      }
      const directive = deferDirectiveOf(selection);
      if (directive?.arguments?.some((a) => a.name.value === 'if' && a.value.kind === Kind.VARIABLE)) {
        key += conditionOf(directive, variables) ? '1' : '0';
      }
      const inner = selection.kind === Kind.INLINE_FRAGMENT ? selection.selectionSet : fragments.get(selection.name.value)?.selectionSet;
      if (inner) visit(inner, depth + 1);
    }
  };
  visit(operation.selectionSet, 0);
  return key;
}

export function fragmentDefinitions(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}

/** Whether the document uses `@defer` anywhere (cheap text test first: only documents that say "defer" are walked). */
export function mentionsDefer(document: DocumentNode): boolean {
  const text = document.loc?.source.body;
  return text === undefined || text.includes('@defer');
}

/**
 * Rewrites the operation for planning with `@defer` (see DeferOperation). Throws a GraphQLError when two deferred
 * fragments share a label (each label must name one part of the response).
 */
export function prepareDeferOperation(
  document: DocumentNode,
  operationName: string | undefined,
  variables: Record<string, unknown>,
): DeferOperation | undefined {
  const operation = getOperationAST(document, operationName);
  if (!operation) return undefined;
  const fragments = fragmentDefinitions(document);
  const labels: string[] = [];
  const clientLabels = new Set<string>();
  const used = new Set<string>();

  const rewrite = (set: SelectionSetNode, depth: number): SelectionSetNode => {
    if (depth > 100) throw new GraphQLError('The operation nests fragments too deeply.', { extensions: { code: 'BAD_USER_INPUT' } });
    const selections = set.selections.map((selection): SelectionNode => {
      if (selection.kind === Kind.FIELD) {
        return selection.selectionSet ? { ...selection, selectionSet: rewrite(selection.selectionSet, depth + 1) } : selection;
      }
      let fragment: InlineFragmentNode;
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const definition = fragments.get(selection.name.value);
        if (!definition) throw new GraphQLError(`Unknown fragment "${selection.name.value}".`, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
        fragment = {
          kind: Kind.INLINE_FRAGMENT,
          typeCondition: definition.typeCondition,
          directives: selection.directives ?? [],
          selectionSet: definition.selectionSet,
        };
      } else {
        fragment = selection;
      }
      const directive = deferDirectiveOf(fragment);
      let directives = fragment.directives;
      if (directive) {
        const others = (fragment.directives ?? []).filter((d) => d !== directive);
        if (!conditionOf(directive, variables)) {
          directives = others;
        } else {
          const clientLabel = labelOf(directive);
          let label: string;
          if (clientLabel !== undefined) {
            if (used.has(clientLabel)) {
              throw new GraphQLError(`The label "${clientLabel}" is used by more than one @defer; each label must be unique.`, {
                extensions: { code: 'BAD_USER_INPUT' },
              });
            }
            label = clientLabel;
            clientLabels.add(label);
          } else {
            do label = `${AUTO_LABEL_PREFIX}${labels.length}`;
            while (used.has(label));
          }
          used.add(label);
          labels.push(label);
          directives = [...others, labelled(label)];
        }
      }
      return { ...fragment, directives, selectionSet: rewrite(fragment.selectionSet, depth + 1) };
    });
    return { ...set, selections };
  };

  const rewritten: OperationDefinitionNode = { ...operation, selectionSet: rewrite(operation.selectionSet, 0) };
  return { document: rewritten, labels, clientLabels };
}

function isDeferred(fragment: InlineFragmentNode, planned: ReadonlySet<string>): string | undefined {
  const directive = deferDirectiveOf(fragment);
  const label = directive && labelOf(directive);
  return label !== undefined && planned.has(label) ? label : undefined;
}

function withoutDeferDirective(fragment: InlineFragmentNode): InlineFragmentNode {
  return { ...fragment, directives: (fragment.directives ?? []).filter((d) => d.name.value !== 'defer') };
}

/** The selections without the deferred fragments (those the plan defers); other fragments lose their `@defer`. */
function stripDeferred(set: SelectionSetNode, planned: ReadonlySet<string>): SelectionSetNode {
  const selections: SelectionNode[] = [];
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) {
      selections.push(selection.selectionSet ? { ...selection, selectionSet: stripDeferred(selection.selectionSet, planned) } : selection);
    } else if (selection.kind === Kind.INLINE_FRAGMENT && isDeferred(selection, planned) === undefined) {
      const fragment = withoutDeferDirective(selection);
      selections.push({ ...fragment, selectionSet: stripDeferred(fragment.selectionSet, planned) });
    }
  }
  return { ...set, selections };
}

function documentOf(operation: OperationDefinitionNode, selectionSet: SelectionSetNode): DocumentNode {
  return { kind: Kind.DOCUMENT, definitions: [{ ...operation, selectionSet }] };
}

/** The operation as the first payload answers it: every deferred fragment left out. */
export function initialDocument(operation: OperationDefinitionNode, planned: ReadonlySet<string>): DocumentNode {
  return documentOf(operation, stripDeferred(operation.selectionSet, planned));
}

/** One deferred fragment as its payloads answer it. */
export interface DeferredSelection {
  /** The operation reduced to the fields leading to the fragment, and the fragment's own selections (without the fragments deferred inside it). */
  document: DocumentNode;
  /** Response names from the root to the object the fragment applies to (lists are stepped through). */
  path: string[];
}

/** The document and path of the deferred fragment labelled `label`, or undefined when there is none. */
export function deferredSelection(operation: OperationDefinitionNode, label: string, planned: ReadonlySet<string>): DeferredSelection | undefined {
  const path: string[] = [];
  const keep = (set: SelectionSetNode): SelectionSetNode | undefined => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (!selection.selectionSet) continue;
        path.push((selection.alias ?? selection.name).value);
        const kept = keep(selection.selectionSet);
        if (kept) return { ...set, selections: [{ ...selection, selectionSet: kept }] };
        path.pop();
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const fragment = withoutDeferDirective(selection);
        if (isDeferred(selection, planned) === label) {
          return { ...set, selections: [{ ...fragment, selectionSet: stripDeferred(fragment.selectionSet, planned) }] };
        }
        const kept = keep(fragment.selectionSet);
        if (kept) return { ...set, selections: [{ ...fragment, selectionSet: kept }] };
      }
    }
    return undefined;
  };
  const selectionSet = keep(operation.selectionSet);
  return selectionSet && { document: documentOf(operation, selectionSet), path };
}
