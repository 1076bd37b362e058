import { stableUuid } from './ids.js';

/**
 * The deterministic demo shop: every subgraph seeds its own part of it, and the
 * same ids and prices come out on every machine and every run.
 */
export interface DemoUser {
  id: string;
  email: string;
  name: string;
  createdAt: Date;
}
export interface DemoProduct {
  id: string;
  sku: string;
  name: string;
  description: string;
  priceAmount: number;
  currency: string;
  category: string;
  weightGrams: number;
  stock: number;
}
export interface DemoOrderLine {
  productId: string;
  quantity: number;
  unitPriceAmount: number;
}
export interface DemoOrder {
  id: string;
  userId: string;
  status: 'PENDING' | 'CONFIRMED' | 'SHIPPED' | 'DELIVERED' | 'CANCELLED' | 'REJECTED';
  currency: string;
  lines: DemoOrderLine[];
  createdAt: Date;
}
export interface DemoShop {
  users: DemoUser[];
  products: DemoProduct[];
  orders: DemoOrder[];
}

export const DEMO_SIZES = { users: 100, products: 500, orders: 2000 } as const;
export const DEMO_CURRENCY = 'USD';

const FIRST = ['Ada', 'Alan', 'Grace', 'Linus', 'Margaret', 'Ken', 'Barbara', 'Dennis', 'Radia', 'Edsger', 'Frances', 'Donald', 'Hedy', 'John', 'Katherine', 'Tim', 'Sophie', 'Guido', 'Anita', 'Bjarne'];
const LAST = ['Lovelace', 'Turing', 'Hopper', 'Torvalds', 'Hamilton', 'Thompson', 'Liskov', 'Ritchie', 'Perlman', 'Dijkstra', 'Allen', 'Knuth', 'Lamarr', 'McCarthy', 'Johnson', 'Berners-Lee', 'Wilson', 'van Rossum', 'Borg', 'Stroustrup'];
const CATEGORIES = ['books', 'electronics', 'kitchen', 'garden', 'toys', 'sports', 'clothing', 'beauty'];
const ADJECTIVES = ['Classic', 'Compact', 'Deluxe', 'Eco', 'Ergonomic', 'Handmade', 'Modern', 'Portable', 'Rugged', 'Smart', 'Vintage', 'Wireless'];
const NOUNS: Record<string, string[]> = {
  books: ['Novel', 'Cookbook', 'Atlas', 'Field Guide', 'Anthology'],
  electronics: ['Headphones', 'Speaker', 'Charger', 'Keyboard', 'Camera'],
  kitchen: ['Kettle', 'Knife Set', 'Skillet', 'Blender', 'Teapot'],
  garden: ['Trowel', 'Planter', 'Hose', 'Pruner', 'Bird Feeder'],
  toys: ['Puzzle', 'Kite', 'Robot Kit', 'Board Game', 'Train Set'],
  sports: ['Yoga Mat', 'Water Bottle', 'Jump Rope', 'Tennis Racket', 'Backpack'],
  clothing: ['Rain Jacket', 'Wool Socks', 'Scarf', 'Sneakers', 'Beanie'],
  beauty: ['Face Cream', 'Shampoo', 'Lip Balm', 'Hand Soap', 'Perfume'],
};
const STATUSES: DemoOrder['status'][] = ['DELIVERED', 'DELIVERED', 'DELIVERED', 'SHIPPED', 'CONFIRMED', 'PENDING', 'CANCELLED', 'REJECTED'];
const EPOCH = Date.UTC(2026, 0, 1);

/** mulberry32: a tiny seeded PRNG, good enough for demo data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let cached: DemoShop | undefined;

export function demoShop(): DemoShop {
  cached ??= build();
  return cached;
}

function build(): DemoShop {
  const rand = prng(20261122);
  const int = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

  const users: DemoUser[] = [];
  for (let i = 0; i < DEMO_SIZES.users; i++) {
    const first = FIRST[i % FIRST.length]!;
    const last = LAST[Math.floor(i / FIRST.length) % LAST.length]!;
    users.push({
      id: stableUuid(`user:${i}`),
      email: `${first}.${last.replace(/\W/g, '')}.${i}@example.com`.toLowerCase(),
      name: `${first} ${last}`,
      createdAt: new Date(EPOCH + i * 3_600_000),
    });
  }

  const products: DemoProduct[] = [];
  for (let i = 0; i < DEMO_SIZES.products; i++) {
    const category = CATEGORIES[i % CATEGORIES.length]!;
    const noun = pick(NOUNS[category]!);
    const adjective = pick(ADJECTIVES);
    products.push({
      id: stableUuid(`product:${i}`),
      sku: `${category.slice(0, 3).toUpperCase()}-${String(i + 1).padStart(5, '0')}`,
      name: `${adjective} ${noun}`,
      description: `A ${adjective.toLowerCase()} ${noun.toLowerCase()} from our ${category} range.`,
      priceAmount: int(199, 49_999),
      currency: DEMO_CURRENCY,
      category,
      weightGrams: int(50, 20_000),
      stock: i % 10 === 9 ? 0 : int(1, 500),
    });
  }

  const orders: DemoOrder[] = [];
  for (let i = 0; i < DEMO_SIZES.orders; i++) {
    // The first order always has ten lines: benchmarks and examples use it.
    const lineCount = i === 0 ? 10 : int(1, 10);
    const chosen = new Set<DemoProduct>();
    while (chosen.size < lineCount) chosen.add(pick(products));
    orders.push({
      id: stableUuid(`order:${i}`),
      userId: pick(users).id,
      status: pick(STATUSES),
      currency: DEMO_CURRENCY,
      lines: [...chosen].map((p) => ({ productId: p.id, quantity: int(1, 5), unitPriceAmount: p.priceAmount })),
      createdAt: new Date(EPOCH + 100 * 3_600_000 + i * 600_000),
    });
  }
  return { users, products, orders };
}
