import { DEMO_CUSTOMER_PASSWORD } from '@shop/common';
import type { Customer } from './order-load.js';
import { sleep } from './service-process.js';

/**
 * Logs one account in through the router; scrypt is slow on purpose, so a busy users subgraph gets retries for up to a
 * minute (a login that outran the router's deadline opens users' breaker, which lets the next one probe soon after).
 */
export async function login(url: string, email: string, password = DEMO_CUSTOMER_PASSWORD, headers: Record<string, string> = {}): Promise<Customer> {
  let last: unknown;
  const until = Date.now() + 60_000;
  for (let attempt = 0; attempt === 0 || Date.now() < until; attempt++) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { id } } }',
        variables: { e: email, p: password },
      }),
      signal: AbortSignal.timeout(15_000),
    }).catch((error: unknown) => error);
    if (response instanceof Response) {
      const body = (await response.json()) as { data?: { login?: { token: string; user: { id: string } } }; errors?: unknown };
      if (body.data?.login) return { id: body.data.login.user.id, authorization: `Bearer ${body.data.login.token}` };
      last = body.errors;
    } else {
      last = response;
    }
    await sleep(2_000);
  }
  throw new Error(`login of ${email} failed: ${JSON.stringify(last)}`);
}

/** Logs the demo customers in, one at a time: scrypt takes a core for each login, and the machine may have two, busy with the whole shop. */
export async function loginCustomers(url: string, users: readonly { email: string }[]): Promise<Customer[]> {
  const customers: Customer[] = [];
  for (const user of users) customers.push(await login(url, user.email));
  return customers;
}
