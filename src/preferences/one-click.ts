/**
 * Reading a one-click POST body. RFC 8058 §3.2 lets the mail client send
 * `List-Unsubscribe=One-Click` as application/x-www-form-urlencoded or as
 * multipart/form-data (RFC 7578); the multipart case is one small text field,
 * so it is read here rather than with a general upload parser.
 */

/** Most a one-click body needs; anything longer is not a one-click request. */
export const ONE_CLICK_BODY_LIMIT = 4096;

/** The text fields of a small multipart/form-data body; null when it is not one. Files are ignored. */
export function parseMultipartFields(body: string, contentType: string): Record<string, string> | null {
  const boundary = /;\s*boundary=(?:"([^"]{1,70})"|([^;\s"]{1,70}))/i.exec(contentType);
  const marker = boundary?.[1] ?? boundary?.[2];
  if (!marker) return null;
  const parts = body.split(`--${marker}`);
  if (parts.length < 3) return null;
  const fields: Record<string, string> = {};
  // parts[0] is the preamble; the last part starts with "--" (the close delimiter).
  for (const part of parts.slice(1, -1)) {
    const split = /\r?\n\r?\n/.exec(part);
    if (!split) continue;
    const headers = part.slice(0, split.index);
    const disposition = /^content-disposition:\s*form-data\s*;(.*)$/im.exec(headers)?.[1] ?? '';
    const name = /(?:^|;)\s*name="([^"]*)"/i.exec(disposition)?.[1];
    if (name === undefined || /(?:^|;)\s*filename\*?=/i.test(disposition)) continue;
    fields[name] = part.slice(split.index + split[0].length).replace(/\r?\n$/, '');
  }
  return fields;
}
