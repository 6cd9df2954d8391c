import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collectionMethodOf } from './receipt-method.js';

test('Kantara collectionMethod: a re-permission click is labelled by itself, a double opt-in by its request', () => {
  assert.equal(collectionMethodOf('re_permission'), 're_permission_email_confirmation');
  // Whatever else the event points at, its own method decides.
  assert.equal(collectionMethodOf('re_permission', 'web_form'), 're_permission_email_confirmation');
  assert.equal(collectionMethodOf('double_opt_in', 'web_form'), 'web_form_double_opt_in');
  assert.equal(collectionMethodOf('double_opt_in', 'preference_centre'), 'preference_centre_double_opt_in');
  // Never passed off as a web form: an unknown method is named as recorded.
  assert.equal(collectionMethodOf('double_opt_in', 'api'), 'double_opt_in');
  assert.equal(collectionMethodOf('double_opt_in'), 'double_opt_in');
  assert.equal(collectionMethodOf(undefined), 'unknown');
});
