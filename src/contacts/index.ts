export { parseAddress, aliasKeys, providerKeyOf, type ParsedAddress, type AddressRejection } from './address.js';
export {
  findContactByMatchKey,
  findContactById,
  findContactsByProviderKey,
  insertContact,
  insertContactKey,
  findContactKey,
} from './contact.repository.js';
export { createContactKey, unwrapContactKey, sealPersonal, openPersonal, type MasterKey, type PersonalData } from './contact-keys.js';
