/** An amount in a currency's minor unit. */
export interface Amount {
  amount: number;
  currency: string;
}

/** From this price (in minor units) up, shipping is free. */
export const FREE_SHIPPING_FROM = 10_000;
export const SHIPPING_BASE = 499;
export const SHIPPING_PER_KG = 150;

/**
 * Cost of shipping one unit, in the product's currency: free from FREE_SHIPPING_FROM,
 * otherwise a base fee plus a fee for every started kilogram. Deliberately simple and
 * deterministic: a carrier's rate table would replace it, not the schema.
 */
export function shippingEstimate(price: Amount, weightGrams: number): Amount {
  if (price.amount >= FREE_SHIPPING_FROM) return { amount: 0, currency: price.currency };
  const kilograms = Math.ceil(weightGrams / 1000);
  return { amount: SHIPPING_BASE + SHIPPING_PER_KG * kilograms, currency: price.currency };
}
