import type { Money, NotificationKind, NotificationRequest, OrderLine, OrderStatusPayload } from './jobs.js';

/** A notification ready to deliver: the same content as plain text and HTML. */
export interface RenderedNotification {
  kind: NotificationKind;
  subject: string;
  text: string;
  html: string;
}

export interface Recipient {
  name: string;
  email: string;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** Header values are one line: a newline in a name must not start another header. */
function oneLine(value: string): string {
  return value.replace(/[\r\n\t]+/g, ' ').trim();
}

/** A formatter per currency, with its minor-unit digits read once (resolvedOptions() is costly per call). */
const formats = new Map<string, { format: Intl.NumberFormat; scale: number }>();

/** Formats minor units as money, e.g. { amount: 1999, currency: 'USD' } as $19.99. */
export function formatMoney({ amount, currency }: Money): string {
  let entry = formats.get(currency);
  if (!entry) {
    const format = new Intl.NumberFormat('en-US', { style: 'currency', currency });
    entry = { format, scale: 10 ** (format.resolvedOptions().maximumFractionDigits ?? 2) };
    formats.set(currency, entry);
  }
  return entry.format.format(amount / entry.scale);
}

/** Short order reference for subjects, e.g. #3F2A9C1B. */
function orderReference(orderId: string): string {
  return `#${orderId.replace(/-/g, '').slice(0, 8).toUpperCase()}`;
}

const ORDER_WORDING: Record<OrderStatusPayload['status'], { subject: string; intro: string }> = {
  PENDING: { subject: 'We received your order {ref}', intro: 'Thank you for your order {ref}. We are checking stock and will confirm it shortly.' },
  CONFIRMED: { subject: 'Your order {ref} is confirmed', intro: 'Good news: your order {ref} is confirmed and will ship soon.' },
  REJECTED: { subject: 'We could not accept your order {ref}', intro: 'We are sorry: we could not accept your order {ref}. You have not been charged.' },
  SHIPPED: { subject: 'Your order {ref} has shipped', intro: 'Your order {ref} is on its way.' },
  DELIVERED: { subject: 'Your order {ref} was delivered', intro: 'Your order {ref} was delivered. Enjoy!' },
  CANCELLED: { subject: 'Your order {ref} was cancelled', intro: 'Your order {ref} was cancelled.' },
};

const SIGNATURE = 'The Shop team';

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body style="font-family: sans-serif; color: #222;">
${body}
<p>${escapeHtml(SIGNATURE)}</p>
</body></html>
`;
}

function lineSubtotal(line: OrderLine): Money {
  return { amount: line.unitPrice.amount * line.quantity, currency: line.unitPrice.currency };
}

function renderWelcome(recipient: Recipient): RenderedNotification {
  const name = oneLine(recipient.name);
  const intro = 'Your account is ready. You can now browse the catalog, place orders and follow them live.';
  return {
    kind: 'WELCOME',
    subject: `Welcome to the Shop, ${name}!`,
    text: `Hi ${name},\n\n${intro}\n\n${SIGNATURE}\n`,
    html: layout('Welcome', `<p>Hi ${escapeHtml(name)},</p>\n<p>${escapeHtml(intro)}</p>`),
  };
}

function renderOrder(kind: NotificationKind, recipient: Recipient, order: OrderStatusPayload): RenderedNotification {
  const name = oneLine(recipient.name);
  const ref = orderReference(order.orderId);
  const wording = ORDER_WORDING[order.status];
  const intro = wording.intro.replace('{ref}', ref);
  const reason = order.reason === null ? null : `Reason: ${oneLine(order.reason)}`;
  const lines = order.items.map((line) => ({
    product: oneLine(line.productName ?? `Product ${line.productId}`),
    quantity: line.quantity,
    unitPrice: formatMoney(line.unitPrice),
    subtotal: formatMoney(lineSubtotal(line)),
  }));
  const total = formatMoney(order.total);

  const text = [
    `Hi ${name},`,
    '',
    intro,
    ...(reason ? ['', reason] : []),
    '',
    ...lines.map((l) => `- ${l.product}: ${l.quantity} x ${l.unitPrice} = ${l.subtotal}`),
    `Total: ${total}`,
    '',
    SIGNATURE,
    '',
  ].join('\n');

  const rows = lines
    .map(
      (l) =>
        `<tr><td>${escapeHtml(l.product)}</td><td align="right">${l.quantity}</td>` +
        `<td align="right">${escapeHtml(l.unitPrice)}</td><td align="right">${escapeHtml(l.subtotal)}</td></tr>`,
    )
    .join('\n');
  const html = layout(
    escapeHtml(ref),
    [
      `<p>Hi ${escapeHtml(name)},</p>`,
      `<p>${escapeHtml(intro)}</p>`,
      ...(reason ? [`<p>${escapeHtml(reason)}</p>`] : []),
      '<table cellpadding="4">',
      '<tr><th align="left">Product</th><th align="right">Quantity</th><th align="right">Unit price</th><th align="right">Subtotal</th></tr>',
      rows,
      `<tr><td colspan="3"><strong>Total</strong></td><td align="right"><strong>${escapeHtml(total)}</strong></td></tr>`,
      '</table>',
    ].join('\n'),
  );
  return { kind, subject: wording.subject.replace('{ref}', ref), text, html };
}

/** Renders the notification a job asks for, addressed to `recipient`. */
export function renderNotification(request: NotificationRequest, recipient: Recipient): RenderedNotification {
  return request.name === 'welcome'
    ? renderWelcome(recipient)
    : renderOrder(request.kind, recipient, request.payload);
}
