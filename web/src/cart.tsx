import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';

export interface CartLine {
  productId: string;
  name: string;
  price: { amount: number; currency: string };
  quantity: number;
}

interface CartState {
  lines: CartLine[];
  add(line: Omit<CartLine, 'quantity'>, quantity?: number): void;
  setQuantity(productId: string, quantity: number): void;
  clear(): void;
}

const KEY = 'shop.cart';
const CartContext = createContext<CartState>({ lines: [], add: () => {}, setQuantity: () => {}, clear: () => {} });

function stored(): CartLine[] {
  try {
    const lines = JSON.parse(localStorage.getItem(KEY) ?? '[]') as CartLine[];
    return Array.isArray(lines) ? lines : [];
  } catch {
    return [];
  }
}

/** The cart, kept in localStorage so a reload does not empty it. */
export function CartProvider({ children }: { children: ReactNode }) {
  const [lines, setLines] = useState(stored);
  const save = useCallback((next: CartLine[]) => {
    localStorage.setItem(KEY, JSON.stringify(next));
    setLines(next);
  }, []);
  const add = useCallback(
    (line: Omit<CartLine, 'quantity'>, quantity = 1) => {
      const existing = lines.find((l) => l.productId === line.productId);
      save(existing ? lines.map((l) => (l === existing ? { ...l, quantity: l.quantity + quantity } : l)) : [...lines, { ...line, quantity }]);
    },
    [lines, save],
  );
  const setQuantity = useCallback(
    (productId: string, quantity: number) =>
      save(quantity <= 0 ? lines.filter((l) => l.productId !== productId) : lines.map((l) => (l.productId === productId ? { ...l, quantity } : l))),
    [lines, save],
  );
  const clear = useCallback(() => save([]), [save]);
  const value = useMemo(() => ({ lines, add, setQuantity, clear }), [lines, add, setQuantity, clear]);
  return <CartContext.Provider value={value}>{children}</CartContext.Provider>;
}

export function useCart(): CartState {
  return useContext(CartContext);
}
