/**
 * The narrow edge between Assent and whatever carries mail. A transport takes
 * a fully built RFC 5322 message and an SMTP envelope; it never composes.
 * Every implementation (smtp, outbox, memory) passes the shared suite in
 * transport.contract.ts.
 */
export interface Envelope {
  /** Return path (MAIL FROM). */
  from: string;
  /** Recipients (RCPT TO), sent verbatim as the person entered them. */
  to: string[];
}

export interface OutgoingMessage {
  envelope: Envelope;
  /** The Message-ID header's value, with angle brackets. */
  messageId: string;
  /** The complete message: headers, blank line, body, CRLF line endings. */
  raw: Buffer;
}

export type SendResult =
  | { status: 'sent'; messageId: string; response: string }
  /** 4xx or a lost connection: may succeed later. */
  | { status: 'transient'; messageId: string; response: string; code?: number }
  /** 5xx: will not succeed in this form. */
  | { status: 'permanent'; messageId: string; response: string; code?: number };

export interface Transport {
  readonly kind: 'smtp' | 'outbox' | 'memory';
  send(message: OutgoingMessage): Promise<SendResult>;
  /** Closes pooled connections; sends after close are refused. */
  close(): Promise<void>;
}
