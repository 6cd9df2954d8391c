/**
 * One SMTP session over node:net / node:tls (RFC 5321), reused for many
 * messages. Replies are matched to commands strictly in order, which is what
 * makes PIPELINING (RFC 2920) cheap: MAIL, RCPT and DATA go out in one write
 * and their replies are read back as they come.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { OutgoingMessage, SendResult } from './transport.js';
import {
  authenticate, dotStuff, DOT_CRLF, envelopeRefusal, failure, mailFrom, parseExtensions, planEnvelope,
  ReplyParser, replyStatus, SMTPUTF8_UNSUPPORTED, SmtpSessionError, type EnvelopePlan, type Reply,
  type SmtpEndpoint, type SmtpTimeouts,
} from './smtp-wire.js';

export type SmtpClientOptions = SmtpEndpoint & { timeouts: SmtpTimeouts };

/** A reply still owed, in the order its command was written. */
type Waiter = { resolve: (reply: Reply) => void; reject: (error: Error) => void; timeoutMs: number };

const noop = (): void => {};

export class SmtpConnection {
  private socket: net.Socket;
  private parser: ReplyParser;
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private dead: SmtpSessionError | undefined;
  private quitting: Promise<void> | undefined;
  /** Resolves when the next writer may start (see takeTurn). */
  private turn: Promise<void> = Promise.resolve();
  private extensions = new Map<string, string>();
  /** Called once when the session ends for any reason other than quit(). */
  onDead: ((error: SmtpSessionError) => void) | undefined;

  private constructor(private readonly options: SmtpClientOptions) {
    const { host, port } = options;
    this.socket = options.secure ? tls.connect({ host, port, ...this.tlsOptions() }) : net.connect({ host, port });
    this.parser = new ReplyParser((reply) => this.onReply(reply));
    this.attach(this.socket);
  }

  /** Connects, reads the greeting, says EHLO, upgrades and authenticates as asked. */
  static async open(options: SmtpClientOptions): Promise<SmtpConnection> {
    const connection = new SmtpConnection(options);
    try {
      await connection.handshake();
      return connection;
    } catch (error) {
      connection.kill(asSessionError(error));
      throw connection.dead;
    }
  }

  get alive(): boolean {
    return this.dead === undefined && this.quitting === undefined;
  }

  /** Extension keywords from the last EHLO, e.g. PIPELINING, SIZE, SMTPUTF8. */
  has(extension: string): boolean {
    return this.extensions.has(extension);
  }

  /**
   * One transaction; never throws for the server's or the network's doing. Two
   * may be under way at once with PIPELINING: the second's envelope goes out
   * right behind the first's message, in the same write (RFC 2920 §3.1 lets
   * message content open a command group), while the first awaits its reply.
   */
  async send(message: OutgoingMessage): Promise<SendResult> {
    const messageId = message.messageId;
    // A session that is closing takes nothing new: its QUIT may already be on the wire.
    if (!this.alive) return { status: 'transient', messageId, response: (this.dead ?? new SmtpSessionError('ECLOSED', 'session closing')).message };
    const plan = planEnvelope(message.envelope, this.has('SMTPUTF8'));
    if (!plan.ok) return { status: 'permanent', messageId, response: SMTPUTF8_UNSUPPORTED };
    const release = this.takeTurn();
    try {
      await release.ready;
      if (this.dead) throw this.dead;
      return await this.transaction(messageId, plan, message.raw, release.done);
    } catch (error) {
      const lost = asSessionError(error);
      this.kill(lost);
      return { status: 'transient', messageId, response: lost.message };
    } finally {
      release.done();
    }
  }

  /** Ends the session politely (QUIT, RFC 5321 §4.1.1.10) after what is under way; idempotent. */
  quit(): Promise<void> {
    if (this.quitting) return this.quitting;
    const turn = this.takeTurn();
    this.quitting = turn.ready.then(() => (this.dead ? undefined : this.command('QUIT', 5_000)))
      .then(noop, noop)
      .finally(() => {
        this.kill(new SmtpSessionError('ECLOSED', 'closed by client'), { silent: true });
        // Hand the turn on, so a writer queued behind the QUIT wakes, finds the session dead and returns.
        turn.done();
      });
    return this.quitting;
  }

  /** The right to write next; `done` hands it on once this writer's commands and message are out. */
  private takeTurn(): { ready: Promise<void>; done: () => void } {
    const ready = this.turn;
    let done = noop;
    this.turn = new Promise<void>((resolve) => (done = resolve));
    return { ready, done };
  }

  private async transaction(messageId: string, plan: Extract<EnvelopePlan, { ok: true }>, raw: Buffer, handOn: () => void): Promise<SendResult> {
    const envelope = [mailFrom(plan, raw, (keyword) => this.has(keyword)), ...plan.to.map((to) => `RCPT TO:<${to}>`)];
    const replies = this.has('PIPELINING') ? await this.pipelined(envelope) : await this.stepwise(envelope);
    const rcpts = replies.slice(1, envelope.length);
    const data = replies[envelope.length]; // absent when the server stopped us earlier
    const refusal = envelopeRefusal(replies[0]!, rcpts, data);
    if (refusal !== undefined) return this.abort(messageId, refusal, data);
    const reply = this.body(dotStuff(raw));
    // Without PIPELINING the next MAIL must wait for this reply (RFC 5321 §4.1.1).
    if (this.has('PIPELINING')) handOn();
    const final = await reply;
    // Whatever the reply, the server has closed the transaction (§4.1.1.4): no RSET needed.
    if (final.code === 421) this.kill(new SmtpSessionError('ECLOSED', final.text));
    if (replyStatus(final.code) !== 'sent') return failure(messageId, final);
    // Some recipients refused, some accepted: the message went out, and a retry
    // would duplicate it for the accepted ones, so it counts as sent.
    const refused = plan.to.filter((_, i) => replyStatus(rcpts[i]!.code) !== 'sent');
    const note = refused.length === 0 ? '' : ` (rejected: ${refused.join(', ')})`;
    return { status: 'sent', messageId, response: `${final.text}${note}` };
  }

  /** RFC 2920 §3.1: MAIL, every RCPT and DATA in one write, DATA last in the group. */
  private async pipelined(commands: string[]): Promise<Reply[]> {
    const pending = this.commands([...commands, 'DATA']);
    const replies: Reply[] = [];
    for (const reply of pending) {
      replies.push(await reply);
      if (replies.at(-1)!.code === 421) break; // the server is closing (§3.8): later replies never come
    }
    return replies;
  }

  /** Without PIPELINING, each command waits for its reply (RFC 5321 §4.1.1). */
  private async stepwise(commands: string[]): Promise<Reply[]> {
    const replies: Reply[] = [];
    for (const command of commands) {
      const reply = await this.command(command);
      replies.push(reply);
      if (reply.code >= 300 && (replies.length === 1 || reply.code === 421)) return replies;
    }
    if (replies.slice(1).some((r) => r.code < 300)) replies.push(await this.command('DATA'));
    return replies;
  }

  private async abort(messageId: string, refusal: Reply, data: Reply | undefined): Promise<SendResult> {
    if (refusal.code === 421) {
      this.kill(new SmtpSessionError('ECLOSED', refusal.text));
      return failure(messageId, refusal);
    }
    // RFC 2920 §3.1: a server that answered DATA with 354 although no recipient
    // was accepted gets an empty message, which it must then refuse.
    if (data?.code === 354) await this.body([DOT_CRLF]);
    // The transaction may still be open (MAIL accepted): RSET clears it (§4.1.1.5).
    // Its reply is read in order before the next transaction's, so nothing waits here.
    this.command('RSET').then((r) => r.code === 250 || this.kill(new SmtpSessionError('ERSET', r.text)), noop);
    return failure(messageId, refusal);
  }

  /**
   * Writes the stuffed message and returns its end-of-data reply. The socket
   * stays corked until the microtasks have run, so a next envelope handed the
   * turn goes out in the same writev.
   */
  private body(chunks: Buffer[]): Promise<Reply> {
    const reply = this.expect(this.options.timeouts.dataMs);
    const socket = this.socket;
    socket.cork();
    for (const chunk of chunks) socket.write(chunk);
    process.nextTick(() => socket.uncork());
    return reply;
  }

  private async handshake(): Promise<void> {
    const greeting = await this.expect(this.options.timeouts.connectMs);
    if (greeting.code !== 220) throw setupError('greeting', greeting);
    await this.hello();
    const offered = this.has('STARTTLS');
    if (this.options.startTls === 'required' && !this.options.secure && !offered) {
      throw new SmtpSessionError('ETLS', 'STARTTLS required but not offered');
    }
    if (offered && !this.options.secure && this.options.startTls !== 'never') {
      const ready = await this.command('STARTTLS');
      if (ready.code !== 220) throw setupError('STARTTLS', ready);
      await this.upgrade();
      await this.hello(); // RFC 3207 §4.2: forget what the clear-text EHLO said
    }
    if (this.options.auth) await authenticate((line) => this.command(line), this.extensions.get('AUTH'), this.options.auth);
  }

  /** EHLO, falling back to HELO for a server without the extensions (RFC 5321 §4.1.1.1). */
  private async hello(): Promise<void> {
    const ehlo = await this.command(`EHLO ${this.options.clientName}`);
    if (ehlo.code === 250) {
      this.extensions = parseExtensions(ehlo);
      return;
    }
    const helo = await this.command(`HELO ${this.options.clientName}`);
    if (helo.code !== 250) throw setupError('HELO', helo);
    this.extensions = new Map();
  }

  /** Hands the clear-text socket to TLS; buffered clear-text replies would be injected (RFC 3207 §5). */
  private async upgrade(): Promise<void> {
    if (this.parser.buffered) throw new SmtpSessionError('EPROTOCOL', 'data after the STARTTLS reply');
    this.detach(this.socket);
    const secure = tls.connect({ socket: this.socket, ...this.tlsOptions() });
    this.socket = secure;
    this.parser = new ReplyParser((reply) => this.onReply(reply));
    this.attach(secure);
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new SmtpSessionError('ETIMEDOUT', 'TLS handshake')), this.options.timeouts.connectMs);
      secure.once('secureConnect', resolve);
      secure.once('close', () => reject(this.dead ?? new SmtpSessionError('ETLS', 'TLS handshake failed')));
    }).finally(() => clearTimeout(timer));
  }

  private tlsOptions(): tls.ConnectionOptions {
    const servername = net.isIP(this.options.host) === 0 ? this.options.host : undefined;
    return { rejectUnauthorized: this.options.rejectUnauthorized, ...(servername ? { servername } : {}) };
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.parser.feed(chunk);
    } catch (error) {
      this.kill(new SmtpSessionError('EPROTOCOL', (error as Error).message));
    }
  };
  private readonly onError = (e: NodeJS.ErrnoException): void => this.kill(new SmtpSessionError(e.code ?? 'ECONNECTION', e.message));
  private readonly onClose = (): void => this.kill(new SmtpSessionError('ECONNECTION', 'connection closed by the server'));

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true); // command groups are small; Nagle would hold them for an ACK
    socket.on('data', this.onData).on('error', this.onError).on('close', this.onClose);
  }

  private detach(socket: net.Socket): void {
    socket.off('data', this.onData).off('error', this.onError).off('close', this.onClose);
  }

  private command(line: string, timeoutMs?: number): Promise<Reply> {
    return this.commands([line], timeoutMs)[0]!;
  }

  /** Writes the lines in one go and returns their replies, in order. */
  private commands(lines: string[], timeoutMs = this.options.timeouts.replyMs): Promise<Reply>[] {
    const replies = lines.map(() => this.expect(timeoutMs));
    if (!this.dead) this.socket.write(`${lines.join('\r\n')}\r\n`);
    return replies;
  }

  private expect(timeoutMs: number): Promise<Reply> {
    const reply = new Promise<Reply>((resolve, reject) => {
      if (this.dead) return reject(this.dead);
      this.waiters.push({ resolve, reject, timeoutMs });
      if (this.waiters.length === 1) this.arm();
    });
    reply.catch(noop); // callers that stop reading early must not leave unhandled rejections
    return reply;
  }

  private onReply(reply: Reply): void {
    const waiter = this.waiters.shift();
    // An unsolicited reply is usually 421 before the server hangs up (RFC 5321 §3.8).
    if (waiter === undefined) return this.kill(new SmtpSessionError('ECLOSED', reply.text));
    this.arm();
    waiter.resolve(reply);
  }

  /** One timer, for the oldest reply still owed. */
  private arm(): void {
    clearTimeout(this.timer);
    const head = this.waiters[0];
    this.timer = head && setTimeout(() => this.kill(new SmtpSessionError('ETIMEDOUT', `no reply within ${head.timeoutMs} ms`)), head.timeoutMs);
  }

  private kill(error: SmtpSessionError, { silent = false } = {}): void {
    if (this.dead) return;
    this.dead = error;
    clearTimeout(this.timer);
    this.socket.destroy();
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    if (!silent) this.onDead?.(error);
  }
}

function setupError(step: string, reply: Reply): SmtpSessionError {
  return new SmtpSessionError('ESETUP', `${step} refused: ${reply.text}`);
}

function asSessionError(error: unknown): SmtpSessionError {
  if (error instanceof SmtpSessionError) return error;
  return new SmtpSessionError('ECONNECTION', error instanceof Error ? error.message : String(error));
}
