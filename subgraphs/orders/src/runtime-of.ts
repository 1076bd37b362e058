import { GraphQLError } from 'graphql';
import type { Context } from './context.js';
import type { OrdersRuntime } from './runtime.js';

/** Mutations and subscriptions need the runtime (Redis, look-ups); a process started without one cannot serve them. */
export function runtimeOf(context: Context): OrdersRuntime {
  if (!context.runtime) {
    throw new GraphQLError('Order processing is not running in this process', {
      extensions: { code: 'SERVICE_UNAVAILABLE' },
    });
  }
  return context.runtime;
}
