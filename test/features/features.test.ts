import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionConfig } from '../../src/config/schema.js';
import type { Feature, FeatureContext, FeatureModule } from '../../src/features/feature.js';
import { Features } from '../../src/features/features.js';
import { featureModules } from '../../src/features/index.js';
import type { Stage } from '../../src/pipeline/stage.js';

/** The features set: modules built in list order, stages in slot order, contributions merged, start and stop in order. */

const stage = (name: string): Stage => ({ name, inspect: () => undefined });
const connection = { name: 'conn-a', upstream: { kind: 'stdio' } } as ConnectionConfig;
// The modules below use nothing of the context but `feature`.
const base = {} as Omit<FeatureContext, 'feature'>;

describe('Features', () => {
  it('orders a connection’s stages by slot, whatever the order of the list', () => {
    const late: FeatureModule = { name: 'late', create: () => ({ stages: () => ({ mask: stage('mask'), 'pin-lists': stage('lists') }) }) };
    const early: FeatureModule = { name: 'early', create: () => ({ stages: () => ({ limits: stage('limits'), guard: stage('guard') }) }) };
    const features = new Features([late, early], base);
    assert.deepEqual(
      features.stagesFor(connection).map((s) => s.name),
      ['limits', 'guard', 'mask', 'lists'],
    );
  });

  it('gives a virtual server only the limits and authorize slots: its policy is its members’', () => {
    const all: FeatureModule = {
      name: 'all',
      create: () => ({
        stages: () => ({ limits: stage('limits'), authorize: stage('authorize'), 'tool-filter': stage('filter'), guard: stage('guard'), mask: stage('mask') }),
      }),
    };
    const virtual = { name: 'toolbox', upstream: { kind: 'virtual', members: [], separator: '__', memberTimeoutMs: 1000 } } as unknown as ConnectionConfig;
    assert.deepEqual(
      new Features([all], base).stagesFor(virtual).map((s) => s.name),
      ['limits', 'authorize'],
    );
  });

  it('leaves out a slot a feature fills with undefined, and refuses two stages in one slot', () => {
    const none: FeatureModule = { name: 'none', create: () => ({ stages: () => ({ guard: undefined }) }) };
    assert.deepEqual(new Features([none], base).stagesFor(connection), []);
    const a: FeatureModule = { name: 'a', create: () => ({ stages: () => ({ guard: stage('a') }) }) };
    const b: FeatureModule = { name: 'b', create: () => ({ stages: () => ({ guard: stage('b') }) }) };
    assert.throws(() => new Features([a, b], base).stagesFor(connection), /two features put a stage in the 'guard' slot/);
  });

  it('gives a feature the running parts of those above it, and leaves out a feature that is off', () => {
    interface Counter extends Feature {
      readonly count: number;
    }
    const counter: FeatureModule<Counter> = { name: 'counter', create: () => ({ count: 3 }) };
    const off: FeatureModule = { name: 'off', create: () => undefined };
    let seen: number | undefined;
    let seenOff: Feature | undefined = {};
    const user: FeatureModule = {
      name: 'user',
      create: (ctx) => {
        seen = ctx.feature(counter)?.count;
        seenOff = ctx.feature(off);
        return {};
      },
    };
    const features = new Features([counter, off, user], base);
    assert.equal(seen, 3);
    assert.equal(seenOff, undefined);
    assert.equal(features.get(off), undefined);
    assert.equal(features.get(counter)?.count, 3);
  });

  it('merges what the features add to the HTTP port and the sessions', () => {
    const one: FeatureModule = { name: 'one', create: () => ({ http: { issuers: [] }, sessions: { idleTimeoutMs: 5 } }) };
    const two: FeatureModule = { name: 'two', create: () => ({ http: { roles: { auditors: [], admins: ['ops'] } } }) };
    const features = new Features([one, two], base);
    assert.deepEqual(features.contributions('http'), { issuers: [], roles: { auditors: [], admins: ['ops'] } });
    assert.deepEqual(features.contributions('sessions'), { idleTimeoutMs: 5 });
  });

  it('starts and stops the features in list order', async () => {
    const calls: string[] = [];
    const module = (name: string): FeatureModule => ({
      name,
      create: () => ({ start: async () => void calls.push(`start ${name}`), stop: () => void calls.push(`stop ${name}`) }),
    });
    const features = new Features([module('a'), module('b')], base);
    await features.start();
    await features.stop();
    assert.deepEqual(calls, ['start a', 'start b', 'stop a', 'stop b']);
  });

  it('registers every feature once, by a distinct name', () => {
    const names = featureModules.map((m) => m.name);
    assert.equal(new Set(names).size, names.length);
  });
});
