import { isAppError, type ErrorCode } from '../shared/errors.js';

/** The one place that decides an HTTP status for an error code. */
const statusByCode: Record<ErrorCode, number> = {
  config_invalid: 500,
  address_invalid: 422,
  not_found: 404,
  conflict: 409,
  validation_failed: 422,
  token_invalid: 404,
  rate_limited: 429,
  ledger_broken: 500,
  receipt_invalid: 422,
  transport_failed: 502,
  suppressed: 403,
};

export function statusFor(error: unknown): number {
  if (isAppError(error)) return statusByCode[error.code];
  const status = (error as { statusCode?: number } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}

/** Redacts secrets from a URL path before it reaches a log: tokens are capabilities. */
export function redactUrl(url: string): string {
  const path = url.split('?')[0] ?? '';
  return path.replace(/^\/(confirm|u|p|r)\/[^/]+/, '/$1/[token]');
}
