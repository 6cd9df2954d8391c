export { parseAddress, aliasKeys, providerKeyOf, type ParsedAddress, type AddressRejection } from './address.js';
export {
  findContactByMatchKey,
  findContactById,
  findContactLocales,
  findContactsByProviderKey,
  insertContact,
  insertContactKey,
  findContactKey,
} from './contact.repository.js';
export { createContactKey, unwrapContactKey, sealPersonal, openPersonal, type MasterKey, type PersonalData } from './contact-keys.js';
export { readContactNames, sealContactNames, CONTACT_NAMES_AAD, type ContactNames } from './contact-names.js';
export { finalMergeTargets, findKeptContactById, findMergedAwayInto, findMergedInto, keptContactOf } from './contact-merge.repository.js';
