import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isAppError } from '../shared/errors.js';
import { htmlToPlainText } from './text.js';
import { compileTemplate, detectFormat, type RenderContext } from './template.js';

const newsletter = readFileSync(new URL('../../examples/newsletter.mjml', import.meta.url), 'utf8');
const unsubscribe = 'https://assent.example.org/u/tok3n?x=1&y=2';
const preferences = 'https://assent.example.org/p/tok3n';

function context(contact: Record<string, string | null> = { first_name: 'Ann', last_name: 'Lee', email: 'ann@example.org', locale: 'en' }): RenderContext {
  return {
    contact,
    unsubscribe_url: unsubscribe,
    preferences_url: preferences,
    campaign: { subject: 'May news', topic: 'Newsletter' },
    // No postal address: compliance (and the footer it may add) is lint.test.ts's subject.
    controller: { name: 'Example Ltd', address: null },
  };
}

const links = `<a href="{{ unsubscribe_url }}">Unsubscribe</a> <a href="{{ preferences_url }}">Preferences</a>`;

async function html(body: string, subject?: string) {
  return compileTemplate({ format: 'html', source: `<html><body>${body}</body></html>`, subject });
}

async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isAppError(error, 'validation_failed'), `expected validation_failed, got ${String(error)}`);
    return error.message;
  }
  assert.fail('expected the template to be refused');
}

describe('merge fields', () => {
  test('contact, campaign and controller fields are merged, HTML-escaped once', async () => {
    const t = await html(`<p>Hi {{ contact.first_name }} {{ contact.last_name | escape }}, {{ campaign.topic }} from {{ controller.name }}</p>${links}`);
    const r = t.render({ ...context(), contact: { first_name: '<b>Ann</b>', last_name: 'Lee & Co', email: null } });
    assert.match(r.html, /<p>Hi &lt;b&gt;Ann&lt;\/b&gt; Lee &amp; Co, Newsletter from Example Ltd<\/p>/);
    assert.match(r.html, /<a href="https:\/\/assent\.example\.org\/u\/tok3n\?x=1&amp;y=2">Unsubscribe<\/a>/);
    assert.equal(r.footerAppended, false);
    assert.deepEqual(r.missing, []);
  });

  test('newline_to_br keeps its <br> but escapes the value; escape never escapes twice', async () => {
    const t = await html(`<p>{{ campaign.note | newline_to_br }}|{{ campaign.note | escape | newline_to_br }}|{{ campaign.note | escape_once }}</p>${links}`);
    const r = t.render({ ...context(), campaign: { note: '<b>1</b> &\nTwo' } });
    assert.match(r.html, /<p>&lt;b&gt;1&lt;\/b&gt; &amp;<br \/>\nTwo\|&lt;b&gt;1&lt;\/b&gt; &amp;<br \/>\nTwo\|&lt;b&gt;1&lt;\/b&gt; &amp;\nTwo<\/p>/);
    // The text part prints data as it is: a line break in the value stays one.
    assert.match(r.text, /^<b>1<\/b> &\nTwo\|<b>1<\/b> &\nTwo\|<b>1<\/b> &\nTwo\n/);
  });

  test('missing fields render as empty, never as the raw tag', async () => {
    const t = await html(`<p>[{{ contact.first_name }}][{{ contact.nickname }}][{{ nothing.at.all }}][{{ campaign.items[3].title }}]</p>${links}`, 'Hi {{ contact.first_name }}!');
    const r = t.render(context({ email: 'x@example.org' }));
    assert.match(r.html, /<p>\[\]\[\]\[\]\[\]<\/p>/);
    assert.equal(r.subject, 'Hi !');
    assert.doesNotMatch(r.html + r.text + r.subject, /\{\{|\{%/);
  });

  test('the subject is Liquid without HTML escaping, folded to one line, defaulting to <title>', async () => {
    const t = await html(links, 'News for {{ contact.first_name }} & friends');
    assert.equal(t.render(context({ first_name: 'A\r\nBcc: evil@example.org' })).subject, 'News for A Bcc: evil@example.org & friends');
    const titled = await compileTemplate({ format: 'html', source: `<html><head><title>Hello &amp; {{ contact.first_name }}</title></head><body>${links}</body></html>` });
    assert.equal(titled.render(context()).subject, 'Hello & Ann');
  });
});

describe('Liquid limits and sandbox', () => {
  test('a runaway loop stops with a clear error instead of hanging', async () => {
    for (const body of ['{% for i in (1..100000000) %}x{% endfor %}', '{% for i in (1..100000) %}{% for j in (1..100000) %}{{ j }}{% endfor %}{% endfor %}']) {
      const t = await html(body + links);
      const started = Date.now();
      assert.throws(() => t.render(context()), (e) => isAppError(e, 'validation_failed') && /could not be rendered: .*limit exceeded/.test(e.message));
      assert.ok(Date.now() - started < 2000, `stopped after ${Date.now() - started} ms`);
    }
  });

  test('doubling a string until memory runs out is stopped', async () => {
    const t = await html('{% assign a = "xxxxxxxxxx" %}{% for i in (1..40) %}{% assign a = a | append: a %}{% endfor %}{{ a | size }}' + links);
    assert.throws(() => t.render(context()), /memory alloc limit exceeded/);
  });

  test('a template larger than the parse limit is refused', async () => {
    const message = await rejection(html('x'.repeat(2_000_001)));
    assert.match(message, /parse length limit exceeded/);
  });

  test('no prototype, constructor or function is reachable', async () => {
    const t = await html(`[{{ contact.constructor }}][{{ contact.__proto__ }}][{{ contact.toString }}][{{ contact.first_name.constructor.name }}][{{ campaign.run }}][{{ campaign.when }}]${links}`);
    let called = false;
    const ctx = context();
    Object.assign(ctx.campaign, { run: () => ((called = true), 'CALLED'), when: new Date(0) });
    const r = t.render(ctx);
    assert.match(r.html, /\[\]\[\]\[\]\[\]\[\]\[\]/);
    assert.equal(called, false);
  });

  test('includes, renders and layouts are refused when the template is added', async () => {
    for (const tag of ['{% include "secrets" %}', '{% render "/etc/passwd" %}', '{% layout "base" %}']) {
      assert.match(await rejection(html(tag)), /is not available: a template must be self-contained/);
    }
  });

  test('an unknown filter or broken tag is refused with its line', async () => {
    assert.match(await rejection(html('<p>\n{{ contact.first_name | shout }}</p>')), /line 2: undefined filter: shout/);
    assert.match(await rejection(html('<p>\n\n{% if contact.first_name %}</p>')), /line 3: tag {% if contact.first_name %} not closed/);
  });
});

describe('MJML', () => {
  test('compiles to responsive HTML without third-party fonts, Liquid intact', async () => {
    const t = await compileTemplate({ format: 'mjml', source: newsletter });
    assert.match(t.html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
    assert.match(t.html, /@media only screen and \(min-width:480px\)/);
    assert.match(t.html, /class="mj-column-per-50 mj-outlook-group-fix"/);
    assert.doesNotMatch(t.html, /fonts\.googleapis\.com/);
    assert.match(t.html, /<a href="\{\{ unsubscribe_url \}\}"/);
    const r = t.render(context());
    assert.equal(r.subject, 'May news');
    assert.match(r.html, /Hello Ann,/);
    assert.equal(r.footerAppended, false);
  });

  test('invalid MJML is refused with every problem and its line', async () => {
    const source = '<mjml><mj-body><mj-section><mj-column>\n<mj-text foo="x">hi</mj-text>\n<mj-bogus /></mj-column></mj-section></mj-body></mjml>';
    assert.equal(
      await rejection(compileTemplate({ format: 'mjml', source })),
      "the template is not valid:\n  line 2: <mj-text>: Attribute foo is illegal\n  line 3: <mj-bogus>: Element mj-bogus doesn't exist or is not registered",
    );
    assert.match(await rejection(compileTemplate({ format: 'mjml', source: 'plain words' })), /line 1: MJML could not be parsed/);
  });

  test('Liquid that MJML would drop silently, and mj-include, are refused', async () => {
    const dropped = '<mjml><mj-body>\n{% if contact.first_name %}\n<mj-section><mj-column><mj-text>Hi</mj-text></mj-column></mj-section>\n{% endif %}\n</mj-body></mjml>';
    const message = await rejection(compileTemplate({ format: 'mjml', source: dropped }));
    assert.match(message, /line 2: MJML dropped or altered the Liquid tag \{% if contact\.first_name %\}; put tags .* inside <mj-raw>/);
    assert.match(message, /line 4: MJML dropped or altered the Liquid tag \{% endif %\}/);
    const raw = dropped.replace('{% if contact.first_name %}', '<mj-raw>{% if contact.first_name %}</mj-raw>').replace('{% endif %}', '<mj-raw>{% endif %}</mj-raw>');
    const t = await compileTemplate({ format: 'mjml', source: raw });
    assert.doesNotMatch(t.render(context({ first_name: null })).html, />Hi</);
    assert.match(t.render(context({ first_name: 'Ann' })).html, />Hi</);
    const include = '<mjml><mj-body>\n<mj-include path="/etc/passwd" /></mj-body></mjml>';
    assert.match(await rejection(compileTemplate({ format: 'mjml', source: include })), /line 2: <mj-include> is not available/);
  });
});

describe('text part', () => {
  test('keeps the words and the links as "text [url]"', async () => {
    const t = await html('<h1>News for {{ contact.first_name }}</h1><p>Read <a href="https://www.example.org/a">the story</a>.</p>' + links);
    const r = t.render(context());
    assert.equal(r.text, `News for Ann\n\nRead the story [https://www.example.org/a].\n\nUnsubscribe [${unsubscribe}] Preferences [${preferences}]\n`);
  });

  test('the per-template text shortcut gives the same words as converting each rendered body', async () => {
    const t = await compileTemplate({ format: 'mjml', source: newsletter });
    assert.equal(t.textMode, 'template');
    const contacts: Record<string, string | null>[] = [{ first_name: 'Ünal & <Sons>', last_name: "D'Arcy", email: 'u@example.org', locale: 'de' }, { first_name: null }];
    for (const contact of contacts) {
      const r = t.render(context(contact));
      assert.equal(r.text.replace(/\s+/g, ' '), htmlToPlainText(r.html).replace(/\s+/g, ' '));
      assert.ok(r.text.includes(`Unsubscribe [${unsubscribe}]`) && r.text.includes(`Manage your preferences [${preferences}]`));
    }
  });

  test('a template printing `| raw` data converts each rendered body instead', async () => {
    const t = await html('<div>{{ campaign.intro | raw }}</div>' + links);
    assert.equal(t.textMode, 'converted');
    const r = t.render({ ...context(), campaign: { intro: '<p>Hello <b>there</b></p>' } });
    assert.match(r.text, /^Hello there\n/);
  });
});

test('detectFormat: an <mjml> root wins, then the extension', () => {
  assert.equal(detectFormat('a.html', '<?xml version="1.0"?>\n<!-- x -->\n<mjml><mj-body></mj-body></mjml>'), 'mjml');
  assert.equal(detectFormat('a.mjml', '<p>hi</p>'), 'mjml');
  assert.equal(detectFormat('a.htm', '<html></html>'), 'html');
  assert.equal(detectFormat('a.txt', '<p>{{ x }}</p>'), 'html');
});
