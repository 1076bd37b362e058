import { useMemo } from 'react';
import { ApolloProvider } from '@apollo/client/react';
import { createApolloClient } from './apollo.js';
import { useSession } from './session.js';
import { useCart } from './cart.js';
import { navigate, useRoute } from './navigation.js';
import { LoginPage } from './pages/Login.js';
import { ProductsPage } from './pages/Products.js';
import { ProductPage } from './pages/Product.js';
import { CartPage } from './pages/Cart.js';
import { OrderPage } from './pages/Order.js';
import { MyOrdersPage } from './pages/MyOrders.js';
import { AdminPage } from './pages/Admin.js';

function Page() {
  const { segments } = useRoute();
  const { session } = useSession();
  const [page, id] = segments;
  switch (page) {
    case 'login':
      return <LoginPage />;
    case 'product':
      return id ? <ProductPage id={id} /> : <ProductsPage />;
    case 'cart':
      return <CartPage />;
    case 'order':
      return id ? <OrderPage id={id} /> : <MyOrdersPage />;
    case 'orders':
      return <MyOrdersPage />;
    case 'admin':
      return session?.user.role === 'ADMIN' ? <AdminPage /> : <LoginPage />;
    default:
      return <ProductsPage />;
  }
}

export function App() {
  const { session, logOut } = useSession();
  const cart = useCart();
  // A new client per session: nothing cached for one caller is shown to the next, and the socket reconnects as them.
  const client = useMemo(() => createApolloClient(session?.token), [session?.token]);
  const count = cart.lines.reduce((n, l) => n + l.quantity, 0);
  return (
    <ApolloProvider client={client}>
      <header className="bar">
        <a href="#/products" className="brand">
          Shop
        </a>
        <a href="#/products">Products</a>
        <a href="#/cart">Cart ({count})</a>
        {session ? <a href="#/orders">My orders</a> : null}
        {session?.user.role === 'ADMIN' ? <a href="#/admin">Admin</a> : null}
        <span className="spacer" />
        {session ? (
          <>
            <span data-testid="who">{session.user.name}</span>
            <button
              type="button"
              onClick={() => {
                logOut();
                navigate('#/login');
              }}
            >
              Log out
            </button>
          </>
        ) : (
          <a href="#/login">Log in</a>
        )}
      </header>
      <main>
        <Page />
      </main>
    </ApolloProvider>
  );
}
