import type { OutgoingMessage, SendResult, Transport } from './transport.js';

/** What a scripted answer may say: just a status, or a status with the reply it came with. */
export type ScriptedAnswer =
  | SendResult['status']
  | { status: SendResult['status']; code?: number; response?: string };

export interface MemoryTransportOptions {
  /**
   * Decides each answer, so tests can make a send fail transiently then succeed, or
   * fail permanently. `attempt` counts sends of the same Message-ID, from 1.
   */
  script?: (message: OutgoingMessage, attempt: number) => ScriptedAnswer;
}

export interface MemoryTransport extends Transport {
  readonly kind: 'memory';
  /** Messages answered 'sent', in the order they were sent. */
  readonly sent: OutgoingMessage[];
  /** Every send, whatever the answer, in order. */
  readonly attempts: OutgoingMessage[];
}

/** The in-memory transport for tests: keeps copies of what it was given. */
export function createMemoryTransport(options: MemoryTransportOptions = {}): MemoryTransport {
  const sent: OutgoingMessage[] = [];
  const attempts: OutgoingMessage[] = [];
  const attemptsById = new Map<string, number>();
  let closed = false;

  async function send(message: OutgoingMessage): Promise<SendResult> {
    if (closed) throw new Error('memory transport is closed; sends after close() are refused');
    // A copy, so a caller reusing its buffer cannot change what the test sees.
    const kept = copyMessage(message);
    attempts.push(kept);
    const attempt = (attemptsById.get(message.messageId) ?? 0) + 1;
    attemptsById.set(message.messageId, attempt);
    const answer = normalise(options.script?.(kept, attempt) ?? 'sent');
    if (answer.status === 'sent') sent.push(kept);
    return toResult(message.messageId, answer);
  }

  async function close(): Promise<void> {
    closed = true;
  }

  return { kind: 'memory', sent, attempts, send, close };
}

function copyMessage(message: OutgoingMessage): OutgoingMessage {
  return {
    envelope: { from: message.envelope.from, to: [...message.envelope.to] },
    messageId: message.messageId,
    raw: Buffer.from(message.raw),
  };
}

function normalise(answer: ScriptedAnswer): { status: SendResult['status']; code?: number; response?: string } {
  return typeof answer === 'string' ? { status: answer } : answer;
}

/** Default replies mirror what an SMTP relay would say (RFC 5321 §4.2.2). */
function toResult(messageId: string, answer: ReturnType<typeof normalise>): SendResult {
  switch (answer.status) {
    case 'sent':
      return { status: 'sent', messageId, response: answer.response ?? '250 OK (memory)' };
    case 'transient': {
      const code = answer.code ?? 451;
      return { status: 'transient', messageId, code, response: answer.response ?? `${code} try again later (memory)` };
    }
    case 'permanent': {
      const code = answer.code ?? 550;
      return { status: 'permanent', messageId, code, response: answer.response ?? `${code} rejected (memory)` };
    }
  }
}
