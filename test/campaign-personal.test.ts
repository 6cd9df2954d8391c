/**
 * Issue 3 point 1: templates reach the contact's fields as
 * `{{ contact.first_name }}` and the like; a missing field renders empty (or
 * its `default`), never as the raw tag; names are HTML-escaped; and the
 * footer Assent appends speaks the contact's own language. Checked on the
 * messages a real SMTP peer received from the real worker.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { findContactKey, sealContactNames, unwrapContactKey } from '../src/contacts/index.js';
import { addTemplate } from '../src/templates/index.js';
import { newId } from '../src/shared/ids.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import { startSmtpPeer, type SmtpPeer } from './support/smtp-peer.js';
import { addTopicWithForm, seedConfirmedContacts, sendToCompletion, startNewCampaign } from './support/campaign.js';

const TEMPLATE = `<!doctype html><html><body>
<p>Hello {{ contact.first_name | default: "there" }} {{ contact.last_name }}!</p>
{% if contact.first_name %}<p>We kept your name, {{ contact.first_name }}.</p>{% else %}<p>Tell us your name.</p>{% endif %}
<p>Written to {{ contact.email }}.</p>
</body></html>`;

for (const target of await databaseTargets()) {
  describe(`personalised campaign mail (${target.name})`, { skip: target.skip }, () => {
    let peer: SmtpPeer;
    let rt: TestRuntime;
    let dir: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'assent-personal-'));
      peer = await startSmtpPeer();
      rt = await startTestRuntime(target, { env: { ASSENT_SMTP_URL: peer.url }, realTransport: true });
    });
    after(async () => {
      await rt?.close();
      await peer?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test('EML-01: names, defaults and the footer language are each contact\'s own; names are escaped', async () => {
      const R = rt.runtime;
      const db = R.storage.db;
      await addTopicWithForm(R, { slug: 'letters', name: 'Letters' });
      const file = join(dir, 'letter.html');
      writeFileSync(file, TEMPLATE);
      const { controller } = R.config;
      await addTemplate(
        { db, clock: R.clock, newId },
        { name: 'letter', file, controller: { name: controller.name, email: controller.email, address: controller.address, policyUrl: controller.policyUrl } },
      );
      const [alex, zoe] = await seedConfirmedContacts(R, {
        topicSlug: 'letters',
        addresses: ['alex@letters.example.org', 'zoe@letters.example.org', 'nameless@letters.example.org'],
      });
      const giveNames = async (contactId: string, names: { first_name: string | null; last_name: string | null }) => {
        const wrapped = await findContactKey(db, contactId);
        const key = unwrapContactKey(R.secrets.masterKeys, contactId, wrapped!);
        await db.insertInto('contact_names').values({ contact_id: contactId, sealed: sealContactNames(key, names), updated_at: R.clock.now().toISOString() }).execute();
      };
      await giveNames(alex!.id, { first_name: 'Alex', last_name: 'Sample' });
      await giveNames(zoe!.id, { first_name: 'Zoë', last_name: "<b>O'Brien</b>" });
      await db.updateTable('contacts').set({ locale: 'de' }).where('id', '=', zoe!.id).execute();

      const campaignId = await startNewCampaign(R, { topicSlug: 'letters', template: 'letter', subject: 'For {{ contact.first_name | default: "you" }}' });
      await sendToCompletion(R, campaignId);
      assert.deepEqual(peer.messages.map((m) => m.rcptTo.join(',')).sort(), ['alex@letters.example.org', 'nameless@letters.example.org', 'zoe@letters.example.org']);
      const received = new Map<string, { subject: string; html: string; text: string }>();
      for (const message of peer.messages) {
        const parsed = await simpleParser(message.raw);
        received.set(message.rcptTo[0]!, { subject: parsed.subject ?? '', html: String(parsed.html), text: parsed.text ?? '' });
      }
      assert.equal(received.size, 3);

      const a = received.get('alex@letters.example.org')!;
      assert.equal(a.subject, 'For Alex');
      assert.match(a.html, /Hello Alex Sample!/);
      assert.match(a.html, /We kept your name, Alex\./);
      assert.match(a.html, /Written to alex@letters\.example\.org\./);
      assert.match(a.html, /This email was sent to you by/);
      assert.match(a.text, /Hello Alex Sample!/);

      const z = received.get('zoe@letters.example.org')!;
      assert.equal(z.subject, 'For Zoë');
      assert.match(z.html, /Hello Zoë &lt;b&gt;O&#39;Brien&lt;\/b&gt;!/);
      assert.doesNotMatch(z.html, /<b>O'Brien/);
      assert.match(z.html, /Diese E-Mail wurde Ihnen von .* gesendet\./);
      assert.match(z.text, /Hello Zoë <b>O'Brien<\/b>!/);
      assert.match(z.text, /Abmelden/);

      const n = received.get('nameless@letters.example.org')!;
      assert.equal(n.subject, 'For you');
      assert.match(n.html, /Hello there !/);
      assert.match(n.html, /Tell us your name\./);
      for (const m of received.values()) assert.doesNotMatch(m.html + m.text + m.subject, /\{\{|\{%|\ue000/);
    });
  });
}
