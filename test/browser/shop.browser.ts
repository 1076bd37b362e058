/**
 * The web app in a real browser (Debian's Chromium driven by playwright-core, headless) against the real stack:
 * the four subgraphs, the router, and the production build served by web/scripts/serve.ts. A customer logs in,
 * filters products, watches a product's deferred shipping estimate arrive, places an order and follows it from
 * PENDING to CONFIRMED; an administrator in a second browser context ships it, and the customer's page shows SHIPPED,
 * all without a reload. Screenshots of each step go to test/browser/screenshots/ (not committed).
 *   npm run test:browser      (CHROMIUM_PATH overrides /usr/bin/chromium)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { DEMO_ADMIN, DEMO_CUSTOMER_PASSWORD, QUEUES, demoShop } from '@shop/common';
import { COMMITTED_SUPERGRAPH, startRouter, startStack, type Stack } from '../../router/test/stack.js';
import { startUpstream, type Upstream } from '../../router/test/upstream.js';
import { createWebServer } from '../../web/scripts/serve.js';

const WEB = fileURLToPath(new URL('../../web/', import.meta.url));
const SHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));

let stack: Stack;
let inventory: Upstream;
let router: Awaited<ReturnType<typeof startRouter>>;
let web: ReturnType<typeof createWebServer>;
let webUrl: string;
let browser: Browser;
let reservations: Queue;
let queueConnection: Redis;
let dist: string;

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function logIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto(`${webUrl}/#/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByTestId('who').waitFor();
}

beforeAll(async () => {
  await rm(SHOTS, { recursive: true, force: true });
  await mkdir(SHOTS, { recursive: true });
  dist = await mkdtemp(path.join(tmpdir(), 'shop-web-'));
  await build({ root: WEB, logLevel: 'warn', build: { outDir: dist, emptyOutDir: true } });
  stack = await startStack();
  // Inventory behind a gate: the test holds it to see the product page before its deferred part arrives.
  inventory = await startUpstream(stack.subgraphs.inventory.url);
  const urls = Object.fromEntries(Object.entries(stack.subgraphs).map(([name, s]) => [name, s.url]));
  router = await startRouter(COMMITTED_SUPERGRAPH, { ...urls, inventory: inventory.url }, undefined, { RATE_LIMIT_MAX: '0' });
  web = createWebServer({ root: dist, routerUrl: router.url.replace(/\/graphql$/, '') });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  queueConnection = new Redis(stack.redis.url, { maxRetriesPerRequest: null });
  reservations = new Queue(QUEUES.reservations, { connection: queueConnection, prefix: stack.redis.prefix });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await reservations?.resume().catch(() => undefined);
  await reservations?.close();
  queueConnection?.disconnect();
  await new Promise((resolve) => (web ? web.close(resolve) : resolve(undefined)));
  await router?.stop();
  await inventory?.close();
  await stack?.stop();
  if (dist) await rm(dist, { recursive: true, force: true });
});

it('a customer shops and follows the order live while an administrator ships it', async () => {
  const customer = demoShop().users[0]!;
  const shopper = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await shopper.newPage();
  const failures: string[] = [];
  page.on('pageerror', (error) => failures.push(error.message));

  // 1. Log in as a customer.
  await logIn(page, customer.email, DEMO_CUSTOMER_PASSWORD);
  await expect.poll(() => page.evaluate<string>('location.hash')).toBe('#/products');
  await page.getByTestId('product-row').first().waitFor();
  await shot(page, '01-logged-in-products');

  // 2. Filter: kitchen products up to 100.00.
  await page.getByLabel('Category').selectOption('kitchen');
  await page.getByLabel('Price up to').fill('100');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect
    .poll(async () => {
      const categories = await page.getByTestId('product-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-category')));
      return categories.length > 0 && categories.every((c) => c === 'kitchen');
    })
    .toBe(true);
  await shot(page, '02-filtered');

  // 3. A product page: the name and price first, the shipping estimate (deferred: inventory) when it arrives.
  const row = page.getByTestId('product-row').filter({ hasText: 'in stock' }).first();
  const productName = (await row.getByRole('link').textContent())!;
  inventory.hold();
  await row.getByRole('link').click();
  await page.getByRole('heading', { name: productName }).waitFor();
  await page.getByTestId('shipping-pending').waitFor();
  expect(await page.getByTestId('shipping-pending').textContent()).toBe('Estimating shipping…');
  await shot(page, '03-product-estimate-pending');
  inventory.release();
  await page.getByTestId('shipping-estimate').waitFor();
  expect(await page.getByTestId('shipping-estimate').textContent()).toMatch(/^Shipping: (\$[\d.,]+|not available)$/);
  await shot(page, '04-product-estimate-arrived');

  // 4. Cart and checkout; the reservation queue is paused so the order is seen PENDING first.
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.getByRole('link', { name: 'Go to the cart' }).click();
  await page.getByTestId('cart-line').waitFor();
  await reservations.pause();
  await page.getByTestId('place-order').click();
  await page.waitForURL(/#\/order\//);
  await expect.poll(() => page.getByTestId('order-status').textContent()).toBe('PENDING');
  // A marker on the window: it is gone if the page reloads.
  await page.evaluate('window.stillTheSamePage = true');
  const orderId = (await page.getByTestId('order-id').textContent())!;
  await shot(page, '05-order-pending');

  // 5. Inventory reserves the stock: CONFIRMED arrives over the subscription.
  await reservations.resume();
  await expect.poll(() => page.getByTestId('order-status').textContent(), { timeout: 20_000 }).toBe('CONFIRMED');
  const timeline = () => page.getByTestId('timeline').locator('li strong').allTextContents();
  await expect.poll(timeline).toEqual(['PENDING', 'CONFIRMED']);
  await shot(page, '06-order-confirmed');

  // 6. An administrator, in a browser context of their own, ships it.
  const office = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const admin = await office.newPage();
  await logIn(admin, DEMO_ADMIN.email, DEMO_ADMIN.password);
  await expect.poll(() => admin.evaluate<string>('location.hash')).toBe('#/admin');
  const adminRow = admin.getByTestId(`admin-order-${orderId}`);
  await adminRow.waitFor();
  await shot(admin, '07-admin-confirmed-orders');
  await adminRow.getByRole('button', { name: 'Mark shipped' }).click();
  await expect.poll(() => adminRow.locator('strong').textContent()).toBe('SHIPPED');
  await shot(admin, '08-admin-shipped');

  // 7. The customer's page follows, without a reload.
  await expect.poll(() => page.getByTestId('order-status').textContent(), { timeout: 20_000 }).toBe('SHIPPED');
  expect(await page.evaluate<boolean>('window.stillTheSamePage === true')).toBe(true);
  await expect.poll(timeline).toEqual(['PENDING', 'CONFIRMED', 'SHIPPED']);
  await shot(page, '09-customer-sees-shipped');
  expect(failures).toEqual([]);
  await office.close();
  await shopper.close();
}, 180_000);
