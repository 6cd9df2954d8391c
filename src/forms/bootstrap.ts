import { addTopic, listTopics, defaultConsentText, type TopicDeps } from '../topics/index.js';
import { addForm, listForms } from './form.service.js';
import { translator } from '../shared/i18n.js';

/**
 * On an empty database, creates a "newsletter" topic and a form at
 * /f/newsletter so that `npm start` gives a working sign-up at once.
 */
export async function ensureDefaults(deps: TopicDeps, options: { controllerName: string; locale: string }): Promise<boolean> {
  const [topics, forms] = await Promise.all([listTopics(deps), listForms(deps)]);
  if (topics.length > 0 || forms.length > 0) return false;
  // Written in the default language, which the consent text is also stored under.
  const { t } = translator(options.locale);
  const controller = options.controllerName;
  const name = t('defaults.topic.name');
  await addTopic(deps, {
    slug: 'newsletter',
    name,
    description: t('defaults.topic.description', { controller }),
    consentText: defaultConsentText({ controllerName: controller, topicName: name, locale: options.locale }),
    locale: options.locale,
  });
  await addForm(deps, { slug: 'newsletter', title: t('defaults.form.title', { controller }), topics: [{ slug: 'newsletter' }] });
  return true;
}
