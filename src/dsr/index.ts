export type { DsrDeps } from './deps.js';
export { exportContactData } from './export.service.js';
export { eraseContact, type ErasureChannel, type ErasureRequest } from './erasure.service.js';
export { buildExport, EXPORT_FORMAT, type ContactExport, type ExportedEvent, type ExportInformation, type TopicRef } from './export.js';
export { exportJsonSchema, renderExportJsonSchema, validateJson, type JsonSchema } from './export-schema.js';
