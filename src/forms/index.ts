export { mailDomain, type SignupDeps } from './deps.js';
export { submitSignup } from './signup.service.js';
export { inspectConfirmation, confirmSubscription, reissueReceipt, type ConfirmResult, type TokenView } from './confirmation.service.js';
export { requestTopicSubscription, type SubscriptionRequest, type SubscriptionRequestResult } from './resubscription.service.js';
export { CENTRE_METHOD } from './resubscription.js';
export { deliverSystemMail } from './system-mail.js';
export { addForm, loadForm, listForms, type FormInput, type LoadedForm } from './form.service.js';
export { ensureDefaults } from './bootstrap.js';
export type { SignupResult } from './signup.js';
