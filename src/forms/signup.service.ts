import { randomToken } from '../shared/ids.js';
import {
  createContactKey,
  findContactByMatchKey,
  insertContact,
  insertContactKey,
  keptContactOf,
  parseAddress,
  sealPersonal,
  unwrapContactKey,
  findContactKey,
  type ParsedAddress,
} from '../contacts/index.js';
import { ALL_SCOPE, findStates, findSuppressions, lookupHashes, withLedger } from '../consent/index.js';
import { makeMessageId } from '../delivery/compose.js';
import type { Contact } from '../storage/index.js';
import { DAY_MS, mailConfirmationLink, requestedEvents, storeConfirmationToken, throttleKeyOf } from './confirmation-request.js';
import { mailDomain, type SignupDeps } from './deps.js';
import { loadForm } from './form.service.js';
import { planSignup, type SignupInput, type SignupResult } from './signup.js';
import { countTokensSince, findPendingTopicIds } from './token.repository.js';

type ValidAddress = Extract<ParsedAddress, { ok: true }>;

/**
 * Handles a form submission: validates, records `requested` for each newly
 * ticked topic with its evidence, stores a hashed single-use token and mails
 * the confirmation link. Invalid input records nothing. An address whose
 * record an operator merged into another acts on the kept contact: its
 * states live there, and the merged-away record is never revived beside it.
 */
export async function submitSignup(deps: SignupDeps, input: SignupInput): Promise<SignupResult> {
  const loaded = await loadForm(deps, input.formSlug);
  if (!loaded) return { kind: 'form_not_found' };
  const parsed = parseAddress(input.address);
  const offered = new Map(loaded.topics.map((t) => [t.topic_slug, t]));
  const ticked = [...new Set(input.topics)].filter((slug) => offered.has(slug));
  const errors: { field: 'address' | 'topics'; messageKey: string }[] = [];
  if (!parsed.ok) errors.push({ field: 'address', messageKey: 'form.error.address' });
  if (ticked.length === 0 || ticked.length !== new Set(input.topics).size) {
    errors.push({ field: 'topics', messageKey: 'form.error.topics' });
  }
  if (!parsed.ok || errors.length > 0) return { kind: 'invalid', errors };

  const now = deps.clock.now();
  const throttleKey = throttleKeyOf(deps, parsed);
  const token = randomToken();
  const messageId = makeMessageId(`confirm.${deps.newId()}`, mailDomain(deps));
  const outcome = await withLedger(deps.db, async (trx, ledger) => {
    const requestedTopicIds = ticked.map((slug) => offered.get(slug)!.topic_id);
    const found = await findContactByMatchKey(trx, parsed.matchKey);
    let contact = found && (await keptContactOf(trx, found));
    // The typed address's entries and, after a merge, the kept address's too.
    const matchKeys = [...new Set([parsed.matchKey, contact?.match_key ?? parsed.matchKey])];
    const suppressions = await findSuppressions(trx, matchKeys.flatMap((k) => lookupHashes(deps.keys.suppressionKeys, k)), requestedTopicIds);
    const states = new Map((contact ? await findStates(trx, contact.id) : []).map((s) => [s.topic_id, s.state]));
    const pending = contact ? await findPendingTopicIds(trx, contact.id, now.toISOString()) : new Set<string>();
    const plan = planSignup({
      requestedTopicIds,
      states,
      pending,
      suppressed: suppressions.some((x) => x.scope === ALL_SCOPE) || contact?.erased_at != null,
      suppressedTopics: new Set(suppressions.map((x) => x.scope)),
      confirmationsToday: await countTokensSince(trx, throttleKey, new Date(now.getTime() - DAY_MS).toISOString()),
      confirmationsPerDay: deps.settings.confirmationsPerDay,
    });
    if (!plan.send) return { plan, contact: undefined };

    let contactKey: Buffer;
    if (!contact) {
      contact = newContact(deps, parsed, input.locale, now);
      await insertContact(trx, contact);
      const created = createContactKey(deps.keys.masterKeys, contact.id);
      await insertContactKey(trx, { contact_id: contact.id, wrapped_key: created.wrapped, created_at: now.toISOString() });
      contactKey = created.key;
    } else {
      contactKey = unwrapContactKey(deps.keys.masterKeys, contact.id, (await findContactKey(trx, contact.id))!);
    }
    const tokenId = deps.newId();
    const personal = sealPersonal(contactKey, { address: parsed.address, ip: input.ip, user_agent: input.userAgent });
    const { form } = loaded;
    await ledger.append(
      requestedEvents(deps, {
        origin: { method: 'web_form', form: { id: form.id, slug: form.slug, version: form.version } },
        contactId: contact.id,
        topics: plan.topicIds.map((topicId) => {
          const shown = loaded.topics.find((t) => t.topic_id === topicId)!;
          return { topicId, text: { id: shown.text_id, version: shown.text_version, sha256: shown.text_sha256 } };
        }),
        tokenId,
        messageId,
        personal,
        now,
      }),
    );
    await storeConfirmationToken(trx, deps, { id: tokenId, token, contactId: contact.id, formId: form.id, topicIds: plan.topicIds, throttleKey, now });
    return { plan, contact };
  });

  if (!outcome.plan.send || !outcome.contact) {
    deps.logger.info({ form: input.formSlug, outcome: outcome.plan.send ? 'sent' : outcome.plan.reason }, 'sign-up accepted');
    return { kind: 'accepted', sent: false, skipped: outcome.plan.send ? undefined : outcome.plan.reason };
  }
  const topicIds = outcome.plan.topicIds;
  // The contact's stored language wins over the page's (an existing contact signing up again).
  await mailConfirmationLink(deps, {
    contact: outcome.contact,
    topicNames: loaded.topics.filter((t) => topicIds.includes(t.topic_id)).map((t) => t.topic_name),
    topicIds,
    token,
    messageId,
    locale: input.locale,
    purpose: 'confirmation',
  });
  return { kind: 'accepted', sent: true };
}

function newContact(deps: SignupDeps, parsed: ValidAddress, locale: string, now: Date): Contact {
  return {
    id: deps.newId(),
    address: parsed.address,
    match_key: parsed.matchKey,
    provider_key: parsed.providerKey,
    locale,
    created_at: now.toISOString(),
    erased_at: null,
  };
}
