/**
 * Reads a child server's on-disk outbox (the development transport) the way
 * a person reads their inbox: waits until a mail to an address with a given
 * subject is there. Each file is read and parsed once per reader.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { ServerProcess } from './server-process.js';

export interface OutboxMail {
  /** The message as stored, for header checks the parser would normalise. */
  raw: string;
  mail: ParsedMail;
}

export type OutboxWait = (to: string, subject: string, timeoutMs?: number) => Promise<OutboxMail>;

const recipients = (mail: ParsedMail): string => (mail.to && 'text' in mail.to ? mail.to.text : '');

/** A reader of `server`'s outbox; the error on timeout lists what the outbox held and the server's stderr. */
export function outboxReader(server: ServerProcess): OutboxWait {
  const seen = new Map<string, OutboxMail>();
  return async (to, subject, timeoutMs = 30_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      let names: string[] = [];
      try {
        names = readdirSync(server.outboxDir).filter((n) => n.endsWith('.eml') && !n.startsWith('.'));
      } catch {
        // no outbox yet
      }
      for (const name of names.sort()) {
        if (seen.has(name)) continue;
        const raw = readFileSync(join(server.outboxDir, name), 'utf8');
        seen.set(name, { raw, mail: await simpleParser(raw) });
      }
      const found = [...seen.values()].find(({ mail }) => mail.subject === subject && recipients(mail).includes(to));
      if (found) return found;
      if (Date.now() > until) {
        const held = [...seen.values()].map(({ mail }) => `${mail.subject} -> ${recipients(mail) || '?'}`);
        throw new Error(`no mail "${subject}" to ${to} within ${timeoutMs} ms; the outbox holds:\n${held.join('\n') || '(nothing)'}\n${server.stderr()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
}
