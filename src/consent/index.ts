export * from './ledger.js';
export { withLedger, verifyLedger, type LedgerWriter, type VerifyReport } from './ledger.service.js';
export { readContactEvents, findEvent } from './ledger.repository.js';
export { decideSend, selfLiftableReasons, type SendPurpose, type GateDecision } from './gate.js';
export { lookupHashes, writeHashes, ALL_SCOPE, type SuppressionKey, type SuppressionReason, type SuppressionRow } from './suppression.js';
export { findSuppressions, insertSuppressions, findSuppressionRows, deleteSuppressionRows } from './suppression.repository.js';
export {
  buildReceiptClaims,
  signReceipt,
  verifyReceipt,
  extractReceiptJws,
  renderReceiptText,
  RECEIPT_FILENAME,
  RECEIPT_KEY_PATH,
  type ReceiptClaims,
  type ReceiptInput,
} from './receipt.js';
export { CENTRE_METHOD, collectionMethodOf, REPERMISSION_METHOD } from './receipt-method.js';
export { generateReceiptKey, receiptKeyFromJwk, publicKeySet, type ReceiptPrivateKey } from './receipt-keys.js';
export { findStates } from './state.repository.js';
export { checkGate } from './gate.service.js';
export { suppressContact } from './suppression.service.js';
