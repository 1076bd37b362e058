import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import { describe, expect, it } from 'vitest';
import { EntityFetchBatcher } from '../src/entity-batch.js';

const QUERY = 'query($representations:[_Any!]!){_entities(representations:$representations){...on User{name}}}';

interface Sent {
  representations: { id: string }[];
  requestId: string;
  answer(response: GatewayGraphQLResponse): void;
  fail(error: Error): void;
}

/** A subgraph whose answers the test gives by hand, so it decides what is in flight when. */
function manualSource(): { source: GraphQLDataSource; sent: Sent[] } {
  const sent: Sent[] = [];
  const source: GraphQLDataSource = {
    process: (options) =>
      new Promise((resolve, reject) => {
        sent.push({
          representations: options.request.variables!.representations as { id: string }[],
          requestId: (options.context as { requestId: string }).requestId,
          answer: resolve,
          fail: reject,
        });
      }),
  };
  return { source, sent };
}

function fetchOf(ids: string[], caller = 'admin-1', variables: Record<string, unknown> = {}, requestId = ids.join('+')): GraphQLDataSourceProcessOptions {
  return {
    kind: 'incoming operation',
    request: { query: QUERY, variables: { ...variables, representations: ids.map((id) => ({ __typename: 'User', id })) } },
    context: { requestId, identity: { sub: caller, role: 'ADMIN' } },
    incomingRequestContext: {},
    document: undefined,
  } as unknown as GraphQLDataSourceProcessOptions;
}

/** Answers a fetch with one entity per representation, named after its id. */
function names(sent: Sent): GatewayGraphQLResponse {
  return { data: { _entities: sent.representations.map((r) => ({ name: `name of ${r.id}` })) } };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('EntityFetchBatcher', () => {
  it('sends a fetch that finds its lane idle alone, as it is', async () => {
    const { source, sent } = manualSource();
    const batcher = new EntityFetchBatcher();
    const answer = batcher.process('users', source, fetchOf(['u1']));
    await settle();
    expect(sent.map((s) => s.representations.map((r) => r.id))).toEqual([['u1']]);
    sent[0]!.answer(names(sent[0]!));
    await expect(answer).resolves.toEqual({ data: { _entities: [{ name: 'name of u1' }] } });
  });

  it('combines fetches that arrive while one is in flight, and hands each its own entities and errors', async () => {
    const { source, sent } = manualSource();
    const combined: number[] = [];
    const batcher = new EntityFetchBatcher({ onCombined: (_, fetches) => combined.push(fetches) });
    const first = batcher.process('users', source, fetchOf(['u1']));
    await settle();
    const second = batcher.process('users', source, fetchOf(['u2', 'u3']));
    const third = batcher.process('users', source, fetchOf(['u4']));
    await settle();
    expect(sent).toHaveLength(1);
    sent[0]!.answer(names(sent[0]!));
    await first;
    await settle();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.representations.map((r) => r.id)).toEqual(['u2', 'u3', 'u4']);
    // The combined fetch goes out under the first member's request id.
    expect(sent[1]!.requestId).toBe('u2+u3');
    expect(combined).toEqual([2]);
    sent[1]!.answer({
      data: { _entities: [{ name: 'name of u2' }, null, { name: 'name of u4' }] },
      errors: [
        { message: 'u3 is hidden', path: ['_entities', 1, 'name'], extensions: { code: 'FORBIDDEN' } },
        { message: 'slow database', extensions: { code: 'WARNING' } },
      ],
    });
    await expect(second).resolves.toEqual({
      data: { _entities: [{ name: 'name of u2' }, null] },
      errors: [
        { message: 'u3 is hidden', path: ['_entities', 1, 'name'], extensions: { code: 'FORBIDDEN' } },
        { message: 'slow database', extensions: { code: 'WARNING' } },
      ],
    });
    await expect(third).resolves.toEqual({
      data: { _entities: [{ name: 'name of u4' }] },
      errors: [{ message: 'slow database', extensions: { code: 'WARNING' } }],
    });
  });

  it('renumbers the per-entity errors of an unavailable subgraph for each member', async () => {
    const { source, sent } = manualSource();
    const batcher = new EntityFetchBatcher();
    void batcher.process('users', source, fetchOf(['u0']));
    await settle();
    const a = batcher.process('users', source, fetchOf(['u1']));
    const b = batcher.process('users', source, fetchOf(['u2', 'u3']));
    sent[0]!.answer(names(sent[0]!));
    await settle();
    await settle();
    const extensions = { code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'users' };
    sent[1]!.answer({ errors: [0, 1, 2].map((i) => ({ message: 'down', path: ['_entities', i], extensions })) });
    await expect(a).resolves.toEqual({ errors: [{ message: 'down', path: ['_entities', 0], extensions }] });
    await expect(b).resolves.toEqual({
      errors: [0, 1].map((i) => ({ message: 'down', path: ['_entities', i], extensions })),
    });
  });

  it('never combines fetches of different callers or different other variables', async () => {
    const { source, sent } = manualSource();
    const batcher = new EntityFetchBatcher();
    const all = [
      batcher.process('users', source, fetchOf(['u1'], 'admin-1')),
      batcher.process('users', source, fetchOf(['u2'], 'admin-2')),
      batcher.process('users', source, fetchOf(['u3'], 'admin-1', { locale: 'de' })),
      batcher.process('products', source, fetchOf(['u4'], 'admin-1')),
    ];
    await settle();
    expect(sent.map((s) => s.representations.map((r) => r.id))).toEqual([['u1'], ['u2'], ['u3'], ['u4']]);
    for (const s of sent) s.answer(names(s));
    expect((await Promise.all(all)).map((r) => (r.data as { _entities: { name: string }[] })._entities[0]!.name)).toEqual([
      'name of u1',
      'name of u2',
      'name of u3',
      'name of u4',
    ]);
  });

  it('fetches that leave in the same turn go as one; a group stops at the representation limit', async () => {
    const { source, sent } = manualSource();
    const batcher = new EntityFetchBatcher({ maxRepresentations: 3 });
    const all = [['u1', 'u2'], ['u3'], ['u4'], ['u5', 'u6']].map((ids) => batcher.process('users', source, fetchOf(ids)));
    await settle();
    expect(sent.map((s) => s.representations.map((r) => r.id))).toEqual([['u1', 'u2', 'u3']]);
    sent[0]!.answer(names(sent[0]!));
    await settle();
    expect(sent.map((s) => s.representations.map((r) => r.id))).toEqual([['u1', 'u2', 'u3'], ['u4', 'u5', 'u6']]);
    sent[1]!.answer(names(sent[1]!));
    const answers = await Promise.all(all);
    expect(answers.map((r) => (r.data as { _entities: { name: string }[] })._entities.map((e) => e.name))).toEqual([
      ['name of u1', 'name of u2'],
      ['name of u3'],
      ['name of u4'],
      ['name of u5', 'name of u6'],
    ]);
  });

  it('fails every member of a fetch that throws, and answers a wrong number of entities with an error for each', async () => {
    const { source, sent } = manualSource();
    const batcher = new EntityFetchBatcher();
    const lone = batcher.process('users', source, fetchOf(['u1']));
    await settle();
    const a = batcher.process('users', source, fetchOf(['u2']));
    const b = batcher.process('users', source, fetchOf(['u3']));
    sent[0]!.fail(new Error('socket hang up'));
    await expect(lone).rejects.toThrow('socket hang up');
    await settle();
    sent[1]!.answer({ data: { _entities: [{ name: 'only one' }] } });
    for (const answer of [await a, await b]) {
      expect(answer.data).toBeNull();
      expect(answer.errors).toEqual([
        expect.objectContaining({ message: 'The users service answered 1 entities for 2 representations.', extensions: expect.objectContaining({ code: 'SUBGRAPH_INVALID_RESPONSE' }) }),
      ]);
    }
    const c = batcher.process('users', source, fetchOf(['u4']));
    const d = batcher.process('users', source, fetchOf(['u5']));
    await settle();
    sent[2]!.fail(new Error('reset'));
    await expect(c).rejects.toThrow('reset');
    await expect(d).rejects.toThrow('reset');
  });

  it('passes fetches without representations straight through', async () => {
    const { sent } = manualSource();
    const calls: string[] = [];
    const source: GraphQLDataSource = { process: async (o) => (calls.push(o.request.query!), { data: { me: null } }) };
    const batcher = new EntityFetchBatcher();
    const options = { ...fetchOf([]), request: { query: '{ me { id } }' } } as GraphQLDataSourceProcessOptions;
    await expect(batcher.process('users', source, options)).resolves.toEqual({ data: { me: null } });
    expect(calls).toEqual(['{ me { id } }']);
    expect(sent).toHaveLength(0);
  });
});
