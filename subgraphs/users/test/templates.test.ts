import { describe, expect, it } from 'vitest';
import { formatMoney } from '../src/notifications/templates.js';

describe('formatMoney', () => {
  it('reads minor units with each currency’s own number of digits, also from the cached formatter', () => {
    for (let round = 0; round < 2; round++) {
      expect(formatMoney({ amount: 1999, currency: 'USD' })).toBe('$19.99');
      expect(formatMoney({ amount: 500, currency: 'JPY' })).toBe('¥500');
      expect(formatMoney({ amount: 1234567, currency: 'EUR' })).toBe('€12,345.67');
      expect(formatMoney({ amount: 1000, currency: 'KWD' })).toBe('KWD\u00a01.000');
    }
  });
});
