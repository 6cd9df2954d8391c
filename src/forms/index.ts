export type { SignupDeps } from './deps.js';
export { submitSignup } from './signup.service.js';
export { inspectConfirmation, confirmSubscription, type ConfirmResult, type TokenView } from './confirmation.service.js';
export { addForm, loadForm, listForms, type FormInput, type LoadedForm } from './form.service.js';
export { ensureDefaults } from './bootstrap.js';
export type { SignupResult } from './signup.js';
