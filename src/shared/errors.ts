/**
 * The catalogue of stable error codes. HTTP status is decided in one place
 * (src/http/error-mapper.ts); the CLI prints the code and message.
 */
export const errorCatalog = {
  config_invalid: 'A configuration value is invalid',
  address_invalid: 'The email address is not valid',
  not_found: 'The thing asked for does not exist',
  conflict: 'The change conflicts with what is stored',
  validation_failed: 'The input is not valid',
  token_invalid: 'The link is not valid',
  rate_limited: 'Too many requests',
  ledger_broken: 'The consent ledger does not verify',
  receipt_invalid: 'The consent receipt does not verify',
  transport_failed: 'The message could not be handed to the transport',
  suppressed: 'The person may not be mailed',
} as const;

export type ErrorCode = keyof typeof errorCatalog;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    super(message ?? errorCatalog[code]);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }
}

export function isAppError(value: unknown, code?: ErrorCode): value is AppError {
  return value instanceof AppError && (code === undefined || value.code === code);
}
