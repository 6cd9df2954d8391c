import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compileTemplate, lintTemplate, sampleContext, sentinelUrls, type RenderContext } from './template.js';

const newsletter = readFileSync(new URL('../../examples/newsletter.mjml', import.meta.url), 'utf8');
const controller = { name: 'Example Ltd', address: '1 High Street\nExampletown' };
const sample = sampleContext({ controller });
const address = '<p>{{ controller.address | newline_to_br }}</p>';
const unsubscribe = `<a href="{{ unsubscribe_url }}">Unsubscribe</a>`;
// The address rides with the preferences link, so tests about links need not repeat it.
const preferences = `<a href="{{ preferences_url }}">Preferences</a>${address}`;

async function lint(body: string) {
  const compiled = await compileTemplate({ format: 'html', source: `<html><body>${body}</body></html>` });
  return { compiled, result: lintTemplate(compiled, sample) };
}

function codes(result: ReturnType<typeof lintTemplate>): string[] {
  return result.problems.map((p) => `${p.severity}:${p.code}`);
}

function context(contact: RenderContext['contact'], locale = 'en'): RenderContext {
  return {
    contact: { ...contact, locale },
    unsubscribe_url: 'https://assent.example.org/u/abc',
    preferences_url: 'https://assent.example.org/p/def',
    campaign: {},
    controller,
  };
}

describe('compliance links', () => {
  test('a template with both links and the address passes unchanged', async () => {
    const { compiled, result } = await lint(`<p>Hi {{ contact.first_name }}</p>${unsubscribe} ${preferences}`);
    assert.deepEqual(result.problems, []);
    assert.equal(result.ok, true);
    assert.equal(result.footerAppended, false);
    const r = compiled.render(context({ first_name: 'Ann' }));
    assert.equal(
      r.html,
      '<html><body><p>Hi Ann</p><a href="https://assent.example.org/u/abc">Unsubscribe</a> <a href="https://assent.example.org/p/def">Preferences</a>' +
        '<p>1 High Street<br />\nExampletown</p></body></html>',
    );
    assert.deepEqual(r.missing, []);
  });

  test('both links without the configured postal address: the footer adds it', async () => {
    const { compiled, result } = await lint(`${unsubscribe} <a href="{{ preferences_url }}">Preferences</a>`);
    assert.deepEqual(codes(result), ['notice:missing_postal_address']);
    const r = compiled.render(context({}));
    assert.deepEqual(r.missing, ['postal_address']);
    assert.match(r.html, /<p [^>]*>1 High Street<br>Exampletown<\/p><\/div><\/body><\/html>$/);
  });

  test('with no postal address configured, a notice says CAN-SPAM needs one', async () => {
    const compiled = await compileTemplate({ format: 'html', source: `${unsubscribe} <a href="{{ preferences_url }}">Preferences</a>` });
    const result = lintTemplate(compiled, sampleContext({ controller: { name: 'Example Ltd', address: null } }));
    assert.deepEqual(codes(result), ['notice:no_postal_address']);
    assert.equal(result.footerAppended, false);
  });

  test('the example newsletter passes', async () => {
    const result = lintTemplate(await compileTemplate({ format: 'mjml', source: newsletter }), sample);
    assert.deepEqual(result.problems, []);
    assert.equal(result.rendered?.subject, 'Sample campaign');
  });

  test('a missing unsubscribe link is reported and the footer appended with both links and the address', async () => {
    const { compiled, result } = await lint(`<p>Hi</p>${preferences}`);
    assert.deepEqual(codes(result), ['notice:missing_unsubscribe_link']);
    assert.equal(result.ok, true);
    assert.equal(result.footerAppended, true);
    const r = compiled.render(context({ first_name: 'Ann' }));
    assert.deepEqual(r.missing, ['unsubscribe']);
    assert.equal(compiled.textMode, 'template', 'the footer keeps the per-template text shortcut');
    assert.match(r.html, /Exampletown<\/p><div lang="en" [^>]*><p [^>]*>This email was sent to you by Example Ltd\.<\/p>/);
    assert.match(r.html, /<a href="https:\/\/assent\.example\.org\/u\/abc" [^>]*>Unsubscribe<\/a> · <a href="https:\/\/assent\.example\.org\/p\/def" [^>]*>Manage your preferences<\/a>/);
    assert.match(r.html, /<p [^>]*>1 High Street<br>Exampletown<\/p><\/div><\/body><\/html>$/);
    assert.ok(r.text.endsWith('Unsubscribe [https://assent.example.org/u/abc] · Manage your preferences [https://assent.example.org/p/def]\n1 High Street\nExampletown\n'));
  });

  test('a missing preferences link is reported; the footer speaks the recipient\'s language', async () => {
    const { compiled, result } = await lint(`<p>Hi</p>${unsubscribe}${address}`);
    assert.deepEqual(codes(result), ['notice:missing_preferences_link']);
    const r = compiled.render(context({}, 'de-AT'));
    assert.match(r.html, /<div lang="de" [^>]*><p [^>]*>Diese E-Mail wurde Ihnen von Example Ltd gesendet\.<\/p>/);
    assert.match(r.html, />Abmelden<\/a> · <a [^>]*>Einstellungen verwalten<\/a>/);
    assert.match(r.text, /Abmelden \[https:\/\/assent\.example\.org\/u\/abc\] · Einstellungen verwalten \[https:\/\/assent\.example\.org\/p\/def\]/);
  });

  test('the footer escapes the controller\'s name and address', async () => {
    const { compiled } = await lint('<p>Hi</p>');
    const r = compiled.render({ ...context({}), controller: { name: 'A&B <Ltd>', address: '<script>x</script>' } });
    assert.match(r.html, /sent to you by A&amp;B &lt;Ltd&gt;\.<\/p>/);
    assert.match(r.html, /<p [^>]*>&lt;script&gt;x&lt;\/script&gt;<\/p><\/div>/);
    assert.match(r.text, /sent to you by A&B <Ltd>\./);
  });

  test('links in comments, hidden links and bare URLs do not count', async () => {
    for (const body of [
      `<!-- ${unsubscribe} ${preferences} -->`,
      `<!--[if mso]>${unsubscribe} ${preferences}<![endif]-->`,
      `<a href="{{ unsubscribe_url }}" style="display: none">x</a><a href="{{ preferences_url }}" style="DISPLAY:none">y</a>`,
      `<p>{{ unsubscribe_url }} {{ preferences_url }}</p><img src="{{ unsubscribe_url }}"><a href="{{ preferences_url }}x">p</a>`,
    ]) {
      const { result } = await lint(body + address);
      assert.deepEqual(codes(result), ['notice:missing_unsubscribe_link', 'notice:missing_preferences_link'], body);
      assert.equal(result.footerAppended, true);
      assert.equal(result.ok, true);
    }
  });

  test('a link shown only to recipients with a first name is caught for those without', async () => {
    const { compiled, result } = await lint(`{% if contact.first_name %}${unsubscribe}{% endif %}${preferences}`);
    assert.deepEqual(result.problems, [
      {
        code: 'missing_unsubscribe_link',
        severity: 'notice',
        message: `a recipient with empty contact fields gets no <a href="{{ unsubscribe_url }}"> from the template; Assent's compliance footer is appended`,
      },
    ]);
    assert.equal(compiled.render(context({ first_name: 'Ann' })).footerAppended, false);
    assert.equal(compiled.render(context({ first_name: null })).footerAppended, true);
  });
});

describe('unsafe output', () => {
  test('raw Liquid left in the output fails', async () => {
    const { result } = await lint(`{% raw %}Hello {{ contact.first_name }}{% endraw %}${unsubscribe}${preferences}`);
    assert.equal(result.ok, false);
    assert.deepEqual(codes(result), ['error:raw_liquid']);
    assert.match(result.problems[0]!.message, /Liquid markup is left in the output for the sample recipient: ".*Hello \{\{ contact\.first_name \}\}/);
  });

  test('scripts, event handlers and javascript: URLs fail', async () => {
    for (const body of ['<script>alert(1)</script>', '<img src="x.png" onerror="alert(1)">', '<a href=" javascript:alert(1)">x</a>']) {
      const { result } = await lint(body + unsubscribe + preferences);
      assert.equal(result.ok, false, body);
      assert.deepEqual(codes(result), ['error:script'], body);
    }
  });

  test('a form posting elsewhere fails; one posting to the unsubscribe link passes', async () => {
    const external = await lint(`<form action="https://evil.example.com/collect" method="post"><input name="e"></form>${unsubscribe}${preferences}`);
    assert.deepEqual(codes(external.result), ['error:external_form_action']);
    assert.match(external.result.problems[0]!.message, /a form posts to https:\/\/evil\.example\.com\/collect/);
    const own = await lint(`<form action="{{ unsubscribe_url }}" method="post"><button>Unsubscribe</button></form>${unsubscribe}${preferences}`);
    assert.deepEqual(own.result.problems, []);
  });

  test('a variable the context never provides is a notice', async () => {
    const { result } = await lint(`Hi {{ contcat.first_name }} {{ user }}${unsubscribe}${preferences}`);
    assert.deepEqual(codes(result), ['notice:unknown_variable', 'notice:unknown_variable']);
    assert.equal(result.ok, true);
    assert.match(result.problems[0]!.message, /^\{\{ contcat \}\} is not provided and renders as empty/);
  });

  test('a render that fails for a sample recipient fails the lint', async () => {
    const { result } = await lint(`{% for i in (1..100000000) %}x{% endfor %}${unsubscribe}${preferences}`);
    assert.equal(result.ok, false);
    assert.equal(result.rendered, undefined);
    assert.deepEqual(codes(result), ['error:render_failed', 'error:render_failed']);
  });

  test('the sentinel URLs are under the reserved .invalid TLD', () => {
    assert.match(sentinelUrls.unsubscribe, /^https:\/\/[a-z.]+\.invalid\//);
    assert.match(sentinelUrls.preferences, /^https:\/\/[a-z.]+\.invalid\//);
  });
});
