import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { PlanCache, planCacheOf } from '../src/plan-cache.js';

const FOLLOW = 'subscription Follow($id: ID!) { orderStatusChanged(orderId: $id) { id status } }';

describe('PlanCache', () => {
  it('builds once per operation text and name, whatever document object carries it', () => {
    const cache = new PlanCache<number>();
    let builds = 0;
    const build = () => ++builds;
    expect(cache.get(parse(FOLLOW), 'Follow', build)).toBe(1);
    expect(cache.get(parse(FOLLOW), 'Follow', build)).toBe(1);
    expect(cache.get(parse(FOLLOW), undefined, build)).toBe(2);
    expect(cache.get(parse(FOLLOW.replace('id status', 'id')), 'Follow', build)).toBe(3);
    expect(builds).toBe(3);
  });

  it('keys documents without source text by their printed form', () => {
    const cache = new PlanCache<string>();
    const { loc: _loc, ...withoutLoc } = parse(FOLLOW);
    expect(cache.get(withoutLoc, 'Follow', () => 'a')).toBe('a');
    expect(cache.get(withoutLoc, 'Follow', () => 'b')).toBe('a');
  });

  it('caches nothing when building throws', () => {
    const cache = new PlanCache<string>();
    expect(() => cache.get(parse(FOLLOW), 'Follow', () => { throw new Error('no plan'); })).toThrow('no plan');
    expect(cache.size).toBe(0);
  });

  it('drops the least recently used entry beyond its size', () => {
    const cache = new PlanCache<string>(2);
    const doc = (n: number) => parse(`{ f${n} }`);
    cache.get(doc(1), undefined, () => 'one');
    cache.get(doc(2), undefined, () => 'two');
    cache.get(doc(1), undefined, () => 'rebuilt');
    cache.get(doc(3), undefined, () => 'three');
    expect(cache.size).toBe(2);
    expect(cache.get(doc(1), undefined, () => 'rebuilt')).toBe('one');
    expect(cache.get(doc(2), undefined, () => 'rebuilt')).toBe('rebuilt');
  });

  it('keeps one cache per planning state, so a new supergraph starts empty', () => {
    const first = {};
    const second = {};
    expect(planCacheOf(first)).toBe(planCacheOf(first));
    expect(planCacheOf(second)).not.toBe(planCacheOf(first));
  });
});
