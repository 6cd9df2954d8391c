/**
 * A real SMTP peer for delivery tests: smtp-server on 127.0.0.1 with an
 * ephemeral port, PIPELINING on, no TLS or AUTH. It keeps every accepted
 * message (raw bytes as the client sent them after dot-unstuffing, and the
 * envelope) and every refusal, and can be scripted per recipient and attempt
 * (421/451 then 250, a 550 for one address), slowed down, or told to hold
 * its end-of-data replies until released, so a test can freeze a worker
 * mid-batch. Enhanced status codes are not added by the server: a script's
 * text is the whole reply after the code, so "550 5.7.1" stays 5.7.1.
 */
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';

export interface PeerReply {
  code: number;
  /** Everything after the code, e.g. "5.1.1 <x@y>: User unknown". */
  message: string;
}

export interface PeerMessage {
  /** MAIL FROM. */
  mailFrom: string;
  /** RCPT TO, as the client wrote them. */
  rcptTo: string[];
  raw: Buffer;
  /** The Message-ID header's value with its brackets, when present. */
  messageId: string | undefined;
  /** Date.now() when the peer answered 250. */
  acceptedAt: number;
}

export interface PeerRefusal {
  stage: 'rcpt' | 'data';
  recipients: string[];
  code: number;
  message: string;
  messageId: string | undefined;
}

export interface PeerScript {
  /** Called on every RCPT TO; `attempt` counts this recipient's RCPTs, from 1. */
  rcpt?: (input: { recipient: string; attempt: number }) => PeerReply | undefined;
  /** Called at the end of every DATA; `attempt` counts DATA ends for the first recipient, from 1. */
  data?: (input: { recipients: string[]; attempt: number; messageId: string | undefined }) => PeerReply | undefined;
}

export interface PeerOptions {
  script?: PeerScript;
  /** Wait this long before answering each end of DATA (a slow relay). */
  delayMs?: number;
  /** Called synchronously with every accepted message and the running total, just before the 250 goes out. */
  onAccept?: (message: PeerMessage, total: number) => void;
}

export interface SmtpPeer {
  /** smtp://127.0.0.1:<port> */
  url: string;
  /** Accepted messages, in the order the peer answered 250. */
  messages: PeerMessage[];
  refusals: PeerRefusal[];
  /** Replaces the script (e.g. to stop refusing for a later campaign). */
  setScript(script: PeerScript): void;
  /** Once `accepted` more messages are accepted from now, each later end of DATA waits for release(). */
  holdAfter(accepted: number): void;
  release(): void;
  /** Messages fully received and waiting for their reply (held or delayed). */
  readonly pending: number;
  /** Resolves once nothing is pending. */
  settled(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** The Message-ID field of a raw message, unfolded; undefined when absent. */
export function messageIdOf(raw: Buffer): string | undefined {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = (end === -1 ? text : text.slice(0, end)).replace(/\r\n[ \t]+/g, ' ');
  return /^message-id:\s*(\S+)\s*$/im.exec(head)?.[1];
}

function refusal(reply: PeerReply): Error {
  return Object.assign(new Error(reply.message), { responseCode: reply.code });
}

export async function startSmtpPeer(options: PeerOptions = {}): Promise<SmtpPeer> {
  let script = options.script ?? {};
  const messages: PeerMessage[] = [];
  const refusals: PeerRefusal[] = [];
  const rcptAttempts = new Map<string, number>();
  const dataAttempts = new Map<string, number>();
  let holdAt: number | undefined;
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  let pending = 0;

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    hideENHANCEDSTATUSCODES: true,
    logger: false,
    closeTimeout: 1000,
    onRcptTo(address, _session, callback) {
      const attempt = (rcptAttempts.get(address.address) ?? 0) + 1;
      rcptAttempts.set(address.address, attempt);
      const reply = script.rcpt?.({ recipient: address.address, attempt });
      if (reply && reply.code >= 400) {
        refusals.push({ stage: 'rcpt', recipients: [address.address], code: reply.code, message: reply.message, messageId: undefined });
        return callback(refusal(reply));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        pending += 1;
        void (async () => {
          const raw = Buffer.concat(chunks);
          const rcptTo = session.envelope.rcptTo.map((r) => r.address);
          const messageId = messageIdOf(raw);
          if (options.delayMs) await sleep(options.delayMs);
          if (holdAt !== undefined && messages.length >= holdAt) {
            gate ??= (() => {
              let open = () => {};
              const promise = new Promise<void>((resolve) => (open = resolve));
              return { promise, open };
            })();
            await gate.promise;
          }
          const first = rcptTo[0] ?? '';
          const attempt = (dataAttempts.get(first) ?? 0) + 1;
          dataAttempts.set(first, attempt);
          const reply = script.data?.({ recipients: rcptTo, attempt, messageId });
          pending -= 1;
          if (reply && reply.code >= 400) {
            refusals.push({ stage: 'data', recipients: rcptTo, code: reply.code, message: reply.message, messageId });
            return callback(refusal(reply));
          }
          const from = session.envelope.mailFrom;
          const message: PeerMessage = { mailFrom: from ? from.address : '', rcptTo, raw, messageId, acceptedAt: Date.now() };
          messages.push(message);
          options.onAccept?.(message, messages.length);
          callback();
        })();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  // A client that goes away mid-session (a killed worker) is not the peer's failure.
  server.on('error', () => undefined);
  const { port } = server.server.address() as AddressInfo;

  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    refusals,
    setScript: (next) => {
      script = next;
    },
    holdAfter: (accepted) => {
      holdAt = messages.length + accepted;
    },
    release: () => {
      holdAt = undefined;
      gate?.open();
      gate = undefined;
    },
    get pending() {
      return pending;
    },
    settled: async (timeoutMs = 10_000) => {
      const until = Date.now() + timeoutMs;
      while (pending > 0) {
        if (Date.now() > until) throw new Error(`the SMTP peer still has ${pending} message(s) pending after ${timeoutMs} ms`);
        await sleep(10);
      }
    },
    close: () => {
      holdAt = undefined;
      gate?.open();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
