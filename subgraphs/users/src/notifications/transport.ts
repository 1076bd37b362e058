import { UnrecoverableError } from 'bullmq';
import nodemailer from 'nodemailer';
import type { Logger } from '@shop/common';
import type { Recipient } from './templates.js';

/** One message to deliver. */
export interface OutgoingMessage {
  /** BullMQ job id; the same job always makes the same message. */
  jobId: string;
  /** RFC 5322 Message-ID derived from the job id, so receivers can drop a repeated delivery. */
  messageId: string;
  to: Recipient;
  subject: string;
  text: string;
  html: string;
}

export type TransportName = 'LOCAL' | 'SMTP';

/**
 * Hands a message to its medium. The worker records the notification only after
 * `send` resolved; a `send` that throws is retried with backoff unless the error
 * is an UnrecoverableError.
 */
export interface Transport {
  readonly name: TransportName;
  send(message: OutgoingMessage): Promise<void>;
  close(): Promise<void>;
}

/**
 * Development and tests: nothing leaves the process. The notification row the
 * worker records (insert ... on conflict (job_id) do nothing) is the delivery.
 */
export class LocalTransport implements Transport {
  readonly name = 'LOCAL';

  constructor(private readonly log: Logger) {}

  async send(message: OutgoingMessage): Promise<void> {
    this.log.debug({ jobId: message.jobId, to: message.to.email, subject: message.subject }, 'notification recorded locally');
  }

  async close(): Promise<void> {}
}

/** The mail server refused the message for good (a 5xx reply): retrying would be refused again. */
export class MailRejected extends UnrecoverableError {}

export interface SmtpOptions {
  url: string;
  from: string;
  /** Pooled connections; at most this many messages are in flight. */
  maxConnections: number;
}

export class SmtpTransport implements Transport {
  readonly name = 'SMTP';
  private readonly transporter: nodemailer.Transporter;

  constructor(private readonly options: SmtpOptions) {
    this.transporter = nodemailer.createTransport({
      url: options.url,
      pool: true,
      maxConnections: options.maxConnections,
      // Fail a hung server within seconds so the job is retried instead of holding a worker slot.
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
  }

  async send(message: OutgoingMessage): Promise<void> {
    try {
      await this.transporter.sendMail({
        from: this.options.from,
        to: { name: message.to.name, address: message.to.email },
        subject: message.subject,
        text: message.text,
        html: message.html,
        messageId: message.messageId,
      });
    } catch (error) {
      const code = (error as { responseCode?: unknown }).responseCode;
      if (typeof code === 'number' && code >= 500 && code < 600) {
        throw new MailRejected(`mail server refused the message (${code}): ${(error as Error).message}`);
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    this.transporter.close();
  }
}

/** `<jobId@domain>`, the domain taken from the sender address. */
export function messageIdFor(jobId: string, from: string): string {
  const domain = /@([^\s>]+)>?\s*$/.exec(from)?.[1] ?? 'shop.example';
  return `<${jobId.replace(/[^\w.-]/g, '_')}@${domain}>`;
}
