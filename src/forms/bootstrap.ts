import { addTopic, listTopics, defaultConsentText, type TopicDeps } from '../topics/index.js';
import { addForm, listForms } from './form.service.js';

/**
 * On an empty database, creates a "newsletter" topic and a form at
 * /f/newsletter so that `npm start` gives a working sign-up at once.
 */
export async function ensureDefaults(deps: TopicDeps, options: { controllerName: string; locale: string }): Promise<boolean> {
  const [topics, forms] = await Promise.all([listTopics(deps), listForms(deps)]);
  if (topics.length > 0 || forms.length > 0) return false;
  const name = 'Newsletter';
  await addTopic(deps, {
    slug: 'newsletter',
    name,
    description: `News and updates from ${options.controllerName}, by email, about once a month.`,
    consentText: defaultConsentText({ controllerName: options.controllerName, topicName: name }),
    locale: options.locale,
  });
  await addForm(deps, { slug: 'newsletter', title: `Subscribe to the ${options.controllerName} newsletter`, topics: [{ slug: 'newsletter' }] });
  return true;
}
