import { createHash } from 'node:crypto';
import {
  BREAK,
  GraphQLError,
  Kind,
  visit,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { ApolloServerPlugin } from '@apollo/server';
import type { Redis } from 'ioredis';
import { ErrorCode, OutageLog, type Logger } from '@shop/common';
import type { RouterContext } from './context.js';
import { rateLimitedError, type RateLimited } from './rate-limit.js';

export interface LoginThrottleConfig {
  /** Failed logins of one account (by email) allowed before the back-off starts; 0 turns the throttle off. */
  accountFailures: number;
  /** Failed logins from one client address allowed before the back-off starts (several users may share one). */
  addressFailures: number;
  /** The first lock-out; each further failure doubles it. */
  backoffMs: number;
  /** The longest lock-out; failures are forgotten after four times this without a new one. */
  maxBackoffMs: number;
}

/** The mutation field that logs in, and its argument naming the account. */
const LOGIN_FIELD = 'login';
const EMAIL_ARGUMENT = 'email';

/** The longest lock of the keys asked about, in ms (0: none). */
const LOCKED_FOR = `
local wait = 0
for _, key in ipairs(KEYS) do
  local ttl = redis.call('PTTL', key)
  if ttl > wait then wait = ttl end
end
return wait
`;

/**
 * Counts a failure under each (counter, lock) pair of keys; past its free failures a pair is locked for
 * base × 2^(failures beyond) ms, at most max. ARGV: base, max, memory (counter lifetime), then each pair's free count.
 */
const RECORD_FAILURE = `
local base, max, memory = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local longest = 0
for i = 1, #KEYS, 2 do
  local n = redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], memory)
  local free = tonumber(ARGV[3 + (i + 1) / 2])
  if n > free then
    local lock = math.floor(math.min(base * 2 ^ (n - free - 1), max))
    redis.call('SET', KEYS[i + 1], '1', 'PX', lock)
    if lock > longest then longest = lock end
  end
end
return longest
`;

/** One `login` field of an operation: where its answer goes, and the account it names. */
export interface LoginAttempt {
  responseKey: string;
  email: string;
}

/** The `login` fields at an operation's root (through fragments), with their email from the text or the variables. */
export function loginAttempts(
  operation: OperationDefinitionNode,
  document: DocumentNode,
  variables: Readonly<Record<string, unknown>> | undefined,
): LoginAttempt[] {
  if (operation.operation !== 'mutation') return [];
  const attempts: LoginAttempt[] = [];
  const seen = new Set<string>();
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const visit = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value === LOGIN_FIELD) attempts.push({ responseKey: (selection.alias ?? selection.name).value, email: emailOf(selection, variables) });
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet);
      } else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) visit(fragment.selectionSet);
      }
    }
  };
  visit(operation.selectionSet);
  return attempts;
}

function usesDefer(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Directive(node) {
      if (node.name.value !== 'defer') return undefined;
      found = true;
      return BREAK;
    },
  });
  return found;
}

function emailOf(field: FieldNode, variables: Readonly<Record<string, unknown>> | undefined): string {
  const value = field.arguments?.find((a) => a.name.value === EMAIL_ARGUMENT)?.value;
  const email = value?.kind === Kind.STRING ? value.value : value?.kind === Kind.VARIABLE ? variables?.[value.name.value] : undefined;
  return typeof email === 'string' ? email.trim().toLowerCase() : '';
}

/**
 * Throttles failed logins per account and per client address, in Redis, so every router replica and every transport
 * (HTTP and graphql-ws) shares the count. The users subgraph owns `login` but never sees the client's address; the
 * router sees both the address and the `email` argument, and learns the outcome from the answer: an UNAUTHENTICATED
 * error on the field is a failure, a token a success (which clears that account's failures, not the address's).
 * After the free failures, each one locks the account (or address) for twice as long as the last, from `backoffMs`
 * up to `maxBackoffMs`; a locked login is refused with RATE_LIMITED and `Retry-After` before the password is checked.
 * Emails are kept only as SHA-256 hashes. When Redis cannot be asked, logins are let through (logged once).
 */
export class LoginThrottle {
  private readonly outage: OutageLog;

  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly config: LoginThrottleConfig,
    log: Logger,
  ) {
    this.outage = new OutageLog(log, 'login throttle checks in Redis (logins let through meanwhile)');
  }

  private accountKey(email: string): string {
    return `${this.keyPrefix}login:account:${createHash('sha256').update(email).digest('base64url')}`;
  }

  private addressKey(address: string): string {
    return `${this.keyPrefix}login:address:${address}`;
  }

  /** The refusal when the address or one of the accounts is locked out. */
  async check(address: string, emails: readonly string[]): Promise<RateLimited | undefined> {
    const keys = [this.addressKey(address), ...emails.map((e) => this.accountKey(e))].map((k) => `${k}:lock`);
    let waitMs: number;
    try {
      waitMs = Number(await this.redis.eval(LOCKED_FOR, keys.length, ...keys));
    } catch (error) {
      this.outage.failed(error);
      return undefined;
    }
    this.outage.succeeded();
    return waitMs > 0 ? this.refusal(waitMs) : undefined;
  }

  /** Records a failed login; resolves with how long the account or address is now locked (0: not locked). */
  async failed(address: string, email: string): Promise<number> {
    const account = this.accountKey(email);
    const from = this.addressKey(address);
    const { backoffMs, maxBackoffMs, accountFailures, addressFailures } = this.config;
    try {
      const lockedMs = Number(
        await this.redis.eval(RECORD_FAILURE, 4, account, `${account}:lock`, from, `${from}:lock`, backoffMs, maxBackoffMs, maxBackoffMs * 4, accountFailures, addressFailures),
      );
      this.outage.succeeded();
      return lockedMs;
    } catch (error) {
      this.outage.failed(error);
      return 0;
    }
  }

  /** A successful login clears its account's failures (not the address's: one good account must not reset it). */
  async succeeded(email: string): Promise<void> {
    const account = this.accountKey(email);
    try {
      await this.redis.del(account, `${account}:lock`);
    } catch (error) {
      this.outage.failed(error);
    }
  }

  refusal(waitMs: number): RateLimited {
    const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
    return { retryAfter, message: `Too many failed logins for this account or from this address. Retry in ${retryAfter} s.` };
  }

  /**
   * Checks each login before it runs (HTTP 429 RATE_LIMITED with Retry-After when locked out) and records its outcome
   * from the answer. Operations that are not mutations cost one comparison.
   */
  plugin(): ApolloServerPlugin<RouterContext> {
    return {
      requestDidStart: async () => {
        let attempts: LoginAttempt[] = [];
        return {
          didResolveOperation: async ({ operation, document, request, contextValue }) => {
            if (operation?.operation !== 'mutation') return;
            attempts = loginAttempts(operation, document, request.variables);
            if (attempts.length === 0) return;
            // The outcome is read from the single answer: a deferred login would go uncounted.
            if (usesDefer(document)) {
              attempts = [];
              throw new GraphQLError('login cannot be deferred: send it without @defer.', {
                extensions: { code: ErrorCode.BadRequest, http: { status: 400 } },
              });
            }
            const limited = await this.check(contextValue.clientAddress ?? 'unknown', attempts.map((a) => a.email));
            if (limited) {
              attempts = [];
              throw rateLimitedError(limited, 429);
            }
          },
          willSendResponse: async ({ response, contextValue }) => {
            if (attempts.length === 0 || response.body.kind !== 'single') return;
            const { data, errors } = response.body.singleResult;
            for (const attempt of attempts) {
              if (data?.[attempt.responseKey]) await this.succeeded(attempt.email);
              else if (errors?.some((e) => e.path?.[0] === attempt.responseKey && e.extensions?.code === ErrorCode.Unauthenticated)) {
                await this.failed(contextValue.clientAddress ?? 'unknown', attempt.email);
              }
            }
          },
        };
      },
    };
  }
}
