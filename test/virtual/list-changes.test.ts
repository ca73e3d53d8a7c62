import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ListChanges } from '../../src/virtual/list-changes.js';
import { ResourceRoutes } from '../../src/virtual/resource-routes.js';
import { waitFor } from '../helpers/wait.js';

describe('ListChanges', () => {
  it('merges the changes of one kind made together into one notification, and tells a later change again', async () => {
    const told: string[] = [];
    const changes = new ListChanges((m) => told.push(m));
    changes.changed('notifications/tools/list_changed');
    changes.changed('notifications/tools/list_changed');
    changes.changed('notifications/prompts/list_changed');
    changes.changed('notifications/tools/list_changed');
    assert.deepEqual(told, [], 'nothing before the window ends');
    await waitFor(() => told.length > 0, 'the merged notifications');
    assert.deepEqual(told, ['notifications/tools/list_changed', 'notifications/prompts/list_changed']);
    changes.changed('notifications/tools/list_changed');
    await waitFor(() => told.length > 2, 'the later change');
    assert.deepEqual(told.slice(2), ['notifications/tools/list_changed']);
    changes.changed('notifications/resources/list_changed');
    changes.close();
  });
});

describe('ResourceRoutes', () => {
  it('routes a URI to the member that listed it, else by the longest literal start of a template', () => {
    const routes = new ResourceRoutes();
    routes.learn(0, 'test://static/resource/1', false);
    routes.learn(1, 'file:///{path}', true);
    routes.learn(2, 'file:///tmp/{name}', true);
    routes.learn(0, 'test://{id}', true);
    assert.equal(routes.memberOf('test://static/resource/1'), 0);
    assert.equal(routes.memberOf('file:///tmp/a.txt'), 2, 'the longer literal start wins');
    assert.equal(routes.memberOf('file:///etc/hosts'), 1);
    assert.equal(routes.memberOf('nothing://here'), undefined);
    assert.equal(routes.memberOfTemplate('file:///{path}'), 1);
    assert.equal(routes.hasListed('templates', 1), false);
    routes.listed('templates', 1);
    assert.equal(routes.hasListed('templates', 1), true);
    assert.equal(routes.hasListed('resources', 1), false);
  });
});
