import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideMerge, type Held, type RowStatus } from './import-merge.js';

const fresh: Held = { contact: false, topicState: null, suppression: null };
const stored = (topicState: string | null, suppression: Held['suppression'] = null): Held => ({ contact: true, topicState, suppression });

test('issue 5 acceptance: one person three times (subscribed, unsubscribed, subscribed) is one suppressed contact, the merge recorded', () => {
  assert.deepEqual(decideMerge(fresh, ['subscribed', 'unsubscribed', 'subscribed']), {
    outcomes: ['merged', 'suppressed', 'merged'],
    createContact: true,
    suppressionRow: 1,
    merged: { from: null, to: 'suppressed' },
  });
});

test('imports never raise consent: subscribed rows become at most imported, and only where nothing or imported is stored', () => {
  assert.deepEqual(decideMerge(fresh, ['subscribed', 'subscribed']), { outcomes: ['imported', 'imported'], createContact: true, suppressionRow: null, merged: null });
  assert.deepEqual(decideMerge(stored(null), ['subscribed']), { outcomes: ['imported'], createContact: false, suppressionRow: null, merged: null });
  assert.deepEqual(decideMerge(stored('imported'), ['subscribed']), { outcomes: ['imported'], createContact: false, suppressionRow: null, merged: null });
  // GDPR-07/GDPR-21: confirmed and pending double opt-ins are never touched; withdrawn, lapsed and objected never re-subscribed.
  for (const state of ['confirmed', 'requested', 'withdrawn', 'lapsed', 'some_future_state']) {
    assert.deepEqual(decideMerge(stored(state), ['subscribed', 'subscribed']), { outcomes: ['unchanged', 'unchanged'], createContact: false, suppressionRow: null, merged: null }, state);
  }
});

test('GDPR-21: a suppressed or erased address is never re-added, whatever the rows say', () => {
  for (const rows of [['subscribed'], ['unsubscribed', 'subscribed'], ['complained']] as RowStatus[][]) {
    assert.deepEqual(decideMerge({ contact: false, topicState: null, suppression: 'all' }, rows), {
      outcomes: rows.map(() => 'suppressed_skipped'), createContact: false, suppressionRow: null, merged: null,
    });
  }
  assert.deepEqual(decideMerge(stored('withdrawn', 'topic'), ['subscribed']).outcomes, ['suppressed_skipped']);
});

test('the most restrictive state wins over stored states; merges that change a state are recorded', () => {
  assert.deepEqual(decideMerge(stored('confirmed'), ['unsubscribed']), {
    outcomes: ['suppressed'], createContact: false, suppressionRow: 0, merged: { from: 'confirmed', to: 'suppressed' },
  });
  assert.deepEqual(decideMerge(stored('imported'), ['bounced', 'subscribed']).merged, { from: 'imported', to: 'suppressed' });
  // Nothing said otherwise: an unsubscribe of a contact with no state for the topic is no merge conflict.
  assert.deepEqual(decideMerge(stored(null), ['unsubscribed']).merged, null);
  assert.deepEqual(decideMerge(fresh, ['unsubscribed', 'unsubscribed']), {
    outcomes: ['suppressed', 'suppressed'], createContact: true, suppressionRow: 0, merged: null,
  });
  // A topic-scoped suppression becomes one for everything; its subscribed rows stay out.
  assert.deepEqual(decideMerge(stored('withdrawn', 'topic'), ['subscribed', 'unsubscribed']), {
    outcomes: ['suppressed_skipped', 'suppressed'], createContact: false, suppressionRow: 1, merged: { from: 'withdrawn', to: 'suppressed' },
  });
});

test('the suppression entry takes the least liftable reason: complaint > bounce > unsubscribe', () => {
  assert.equal(decideMerge(fresh, ['unsubscribed', 'bounced', 'complained', 'bounced']).suppressionRow, 2);
  assert.equal(decideMerge(fresh, ['unsubscribed', 'bounced', 'unsubscribed']).suppressionRow, 1);
  assert.equal(decideMerge(fresh, ['subscribed', 'unsubscribed']).suppressionRow, 1);
});

test('GDPR-21: a bounce or complaint for a stored person suppressed only by an unsubscribe is recorded, so it holds for good; nothing else changes', () => {
  const unsubscribedOnly: Held = { contact: true, topicState: null, suppression: 'all', selfLiftable: true };
  assert.deepEqual(decideMerge(unsubscribedOnly, ['subscribed', 'bounced', 'complained', 'unsubscribed']), {
    outcomes: ['suppressed_skipped', 'suppressed_skipped', 'suppressed', 'suppressed_skipped'], createContact: false, suppressionRow: 2, merged: null,
  });
  const skipped = (rows: RowStatus[]) => ({ outcomes: rows.map(() => 'suppressed_skipped'), createContact: false, suppressionRow: null, merged: null });
  assert.deepEqual(decideMerge(unsubscribedOnly, ['subscribed', 'unsubscribed']), skipped(['subscribed', 'unsubscribed']));
  // Not when the reason is already one nobody can lift, not for an address with no stored person, never for an erased one.
  assert.deepEqual(decideMerge({ ...unsubscribedOnly, selfLiftable: false }, ['complained']), skipped(['complained']));
  assert.deepEqual(decideMerge({ ...unsubscribedOnly, contact: false }, ['complained']), skipped(['complained']));
});
