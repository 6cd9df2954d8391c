/**
 * Whether a rendered body links to a URL as a reader can follow it: the
 * `href` of an `<a>` that is not inside a comment (Outlook-only conditional
 * comments included) and whose own style is not `display:none`. It runs once per
 * recipient, so it looks only around the places where the URL occurs rather
 * than parsing the document; every doubt answers "no link", which appends
 * the footer, the safe side.
 */

const hrefAttribute = /\shref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/i;
const styleAttribute = /\sstyle\s*=\s*(?:"([^"]*)"|'([^']*)')/i;
const hidden = /display\s*:\s*none/i;

/** Whether the body links to each of `urls` (in order). */
export function linksTo(html: string, urls: readonly string[]): boolean[] {
  return urls.map((url) => linked(html, url) || (url.includes('&') && linked(html, url.replaceAll('&', '&amp;'), url)));
}

function linked(html: string, needle: string, url = needle): boolean {
  if (needle === '') return false;
  for (let at = html.indexOf(needle); at !== -1; at = html.indexOf(needle, at + 1)) {
    const start = html.lastIndexOf('<', at);
    const end = html.indexOf('>', start);
    if (start === -1 || end < at || !/^<a\s/i.test(html.slice(start, start + 3))) continue;
    if (insideComment(html, start)) continue;
    const tag = html.slice(start, end + 1);
    const href = hrefAttribute.exec(tag);
    if (!href || decodeEntities((href[1] ?? href[2] ?? href[3] ?? '').trim()) !== url) continue;
    const style = styleAttribute.exec(tag);
    if (style && hidden.test(style[1] ?? style[2] ?? '')) continue;
    return true;
  }
  return false;
}

function insideComment(html: string, at: number): boolean {
  const open = html.lastIndexOf('<!--', at);
  return open !== -1 && html.indexOf('-->', open + 4) > at;
}

const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** HTML character references in an attribute value (the few that occur in URLs and titles). */
export function decodeEntities(value: string): string {
  if (!value.includes('&')) return value;
  return value.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return named[ref.toLowerCase()] ?? whole;
  });
}
