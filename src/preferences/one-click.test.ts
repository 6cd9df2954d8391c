import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseMultipartFields } from './one-click.js';
import { isWithdrawable, oneClickChannel, topicsToWithdraw } from './withdrawal.js';

describe('RFC 8058 one-click body (EML-04)', () => {
  test('multipart/form-data: the text fields, with CRLF or bare LF, quoted or bare boundary; files ignored', () => {
    const crlf = '--b1\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b1--\r\n';
    assert.deepEqual(parseMultipartFields(crlf, 'multipart/form-data; boundary=b1'), { 'List-Unsubscribe': 'One-Click' });
    assert.deepEqual(parseMultipartFields(crlf.replaceAll('\r\n', '\n'), 'multipart/form-data; boundary="b1"'), { 'List-Unsubscribe': 'One-Click' });
    const withFile =
      'preamble\r\n--zz\r\ncontent-disposition: form-data; name="upload"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nList-Unsubscribe=One-Click\r\n' +
      '--zz\r\nContent-Disposition: form-data; name="note"\r\n\r\nline 1\r\nline 2\r\n--zz--';
    assert.deepEqual(parseMultipartFields(withFile, 'multipart/form-data; charset=utf-8; boundary=zz'), { note: 'line 1\r\nline 2' });
  });

  test('not multipart: null (no boundary, or no closing delimiter)', () => {
    assert.equal(parseMultipartFields('List-Unsubscribe=One-Click', 'multipart/form-data'), null);
    assert.equal(parseMultipartFields('List-Unsubscribe=One-Click', 'multipart/form-data; boundary=x'), null);
  });

  test('the channel: exactly the RFC 8058 pair is the header one-click; anything else is our page\'s button', () => {
    assert.equal(oneClickChannel({ 'List-Unsubscribe': 'One-Click' }), 'one_click_header');
    assert.equal(oneClickChannel({ 'List-Unsubscribe': ['x', 'One-Click'] }), 'one_click_header');
    for (const body of [{}, null, undefined, { 'List-Unsubscribe': 'one-click' }, { 'List-Unsubscribe': 'Yes' }, { Other: 'One-Click' }]) {
      assert.equal(oneClickChannel(body), 'footer_page', JSON.stringify(body));
    }
  });

  test('withdrawable states, and the topics an objection withdraws with it', () => {
    assert.deepEqual(['requested', 'confirmed', 'imported', 'withdrawn', 'lapsed', null, undefined].map(isWithdrawable), [true, true, true, false, false, false, false]);
    const states = [
      { topic_id: 'a', state: 'confirmed' },
      { topic_id: 'b', state: 'withdrawn' },
      { topic_id: 'c', state: 'requested' },
      { topic_id: 'd', state: 'lapsed' },
    ];
    assert.deepEqual(topicsToWithdraw(states), ['a', 'c']);
  });
});
