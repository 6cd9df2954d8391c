export { addTopic, addConsentText, listTopics, type TopicDeps, type TopicListing } from './topic.service.js';
export { defaultConsentText, consentTextHash, type TopicInput } from './topic.js';
export { findTopicsByIds, findConsentTextsByIds, findTopicBySlug, findConsentTextVersion, findLatestConsentText } from './topic.repository.js';
