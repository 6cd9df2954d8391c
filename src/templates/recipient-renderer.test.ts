import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { compileTemplate, type CompiledTemplate } from './template.js';
import { createRecipientRenderer, joinSplit, splitEligible, type RecipientValues } from './recipient-renderer.js';

const fixed = {
  campaign: { id: 'c1', subject: 'November news' },
  controller: { name: 'Sample & Co <Ltd>', email: 'privacy@example.org', address: '1 Sample Street\n12345 Sample Town', policy_url: 'https://example.org/privacy' },
};

const recipients: RecipientValues[] = [
  person({ first_name: 'Alex', last_name: 'Sample', email: 'alex@example.org', locale: 'en' }, 1),
  person({ first_name: 'Zoë', last_name: "O'Brien <Jr> & \"Co\"", email: 'zoe@example.org', locale: 'de' }, 2),
  person({ first_name: null, last_name: null, email: 'nobody@example.org', locale: null }, 3),
  person({ first_name: '', last_name: '', email: 'empty@example.org', locale: 'fr' }, 4),
  person({ first_name: 'Mary Ann', last_name: 'de la Cruz', email: 'mary@example.org', locale: 'bg' }, 5),
  // Values whitespace handling would change: these take the exact path.
  person({ first_name: ' Padded ', last_name: 'Two  spaces', email: 'pad@example.org', locale: 'en' }, 6),
  person({ first_name: 'Line\nbreak', last_name: null, email: 'nl@example.org', locale: 'en' }, 7),
  person({ first_name: 'Alex', last_name: 'Sample', email: 'alex@example.org', locale: 'en' }, 8),
];

function person(contact: Record<string, string | null>, n: number): RecipientValues {
  return {
    contact,
    unsubscribe_url: `https://mail.example.org/u/v1.token${n}.mac${n}`,
    preferences_url: `https://mail.example.org/p/v1.pref${n}.mac&x=${n}`,
  };
}

const newsletter = readFileSync(new URL('../../bench/lib/newsletter-16k.mjml', import.meta.url), 'utf8');

const templates: Record<string, { format: 'html' | 'mjml'; source: string; subject?: string }> = {
  'the benchmark newsletter (MJML, if/else, default)': { format: 'mjml', source: newsletter },
  'HTML with unless, elsif and a default': {
    format: 'html',
    subject: 'Hello {{ contact.first_name | default: "friend" }}, {{ campaign.subject }}',
    source:
      '<html><body><p>{% if contact.first_name %}Dear {{ contact.first_name }} {{ contact.last_name }}{% elsif contact.email %}Dear {{ contact.email }}{% else %}Hi{% endif %},</p>' +
      '{% unless contact.last_name %}<p>Tell us your name.</p>{% endunless %}' +
      '{% if contact.locale == "de" %}<p>Hallo!</p>{% endif %}' +
      '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · <a href="{{ preferences_url }}">Preferences</a></p>' +
      '<p>{{ controller.name }}<br>1 Sample Street<br>12345 Sample Town</p></body></html>',
  },
  'HTML without links or address (Assent appends its footer, in the contact\'s language)': {
    format: 'html',
    subject: 'News',
    source: '<html><body><p>Hello {{ contact.first_name }}!</p></body></html>',
  },
};

describe('split rendering per recipient', () => {
  for (const [name, input] of Object.entries(templates)) {
    test(`EML-01 / EML-06: ${name}: every recipient's subject, HTML and text equal the exact rendering`, async () => {
      const compiled = await compileTemplate(input);
      assert.equal(splitEligible(compiled.sources), true);
      const render = createRecipientRenderer(compiled, fixed);
      let split = 0;
      for (const recipient of recipients) {
        const expected = compiled.render({ ...fixed, ...recipient });
        const got = render(recipient);
        assert.equal(got.subject, expected.subject);
        assert.equal(joinSplit(got.html), expected.html);
        assert.equal(joinSplit(got.text), expected.text);
        if (got.html.values.length > 0) split += 1;
      }
      // The ordinary recipients (all but the two with unusual whitespace) take the split path.
      assert.equal(split, recipients.length - 2);
    });
  }

  test('shapes are shared: two recipients of one shape get the same statics array', async () => {
    const compiled = await compileTemplate(templates['HTML with unless, elsif and a default']!);
    const render = createRecipientRenderer(compiled, fixed);
    const sam = person({ first_name: 'Sam', last_name: 'Lee', email: 'sam@example.org', locale: 'en' }, 9);
    const [alex, other] = [render(recipients[0]!), render(sam)];
    assert.equal(alex.html.statics, other.html.statics);
    assert.notDeepEqual(alex.html.values, other.html.values);
    assert.notEqual(render(recipients[0]!).html.statics, render(recipients[2]!).html.statics);
  });

  const ineligible: Record<string, string> = {
    'a comparison with a personal value': '{% if contact.first_name == "Bob" %}Hi Bob{% endif %}',
    'a filter that reads the value': '{{ contact.first_name | upcase }}',
    'an assignment': '{% assign n = contact.first_name %}{{ n }}',
    'a loop over the contact': '{% for f in contact %}{{ f }}{% endfor %}',
    'bracket access': '{{ contact["first_name"] }}',
    'a size test': '{% if contact.last_name.size > 3 %}long{% endif %}',
  };
  for (const [what, liquid] of Object.entries(ineligible)) {
    test(`${what} makes the template render exactly for everyone, with the same result`, async () => {
      const compiled = await compileTemplate({
        format: 'html',
        subject: 'News',
        source: `<html><body><p>${liquid}</p><a href="{{ unsubscribe_url }}">u</a> <a href="{{ preferences_url }}">p</a></body></html>`,
      });
      assert.equal(splitEligible(compiled.sources), false);
      const render = createRecipientRenderer(compiled, fixed);
      for (const recipient of recipients) {
        const got = render(recipient);
        assert.equal(got.html.values.length, 0);
        assert.equal(joinSplit(got.html), compiled.render({ ...fixed, ...recipient }).html);
      }
    });
  }

  test('contact.locale may be used freely: it is part of the shape', () => {
    assert.equal(splitEligible(['{% if contact.locale == "de" %}Hallo{% endif %} {{ contact.locale | upcase }}']), true);
    assert.equal(splitEligible(['{{ contact.email }} {{- contact.first_name -}} {%- if preferences_url -%}x{%- endif -%}']), true);
  });

  test('a template whose text part is converted per recipient is rendered exactly', async () => {
    const compiled: CompiledTemplate = { ...(await compileTemplate(templates['HTML with unless, elsif and a default']!)), textMode: 'converted' };
    const got = createRecipientRenderer(compiled, fixed)(recipients[0]!);
    assert.equal(got.html.values.length, 0);
    const expected = compiled.render({ ...fixed, ...recipients[0]! });
    assert.deepEqual([got.subject, joinSplit(got.html), joinSplit(got.text)], [expected.subject, expected.html, expected.text]);
  });
});
