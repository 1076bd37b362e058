import { useState, type FormEvent } from 'react';
import { useMutation } from '@apollo/client/react';
import { LOGIN } from '../operations.js';
import { useSession } from '../session.js';
import { navigate } from '../navigation.js';
import { ErrorNote } from '../errors.js';

export function LoginPage() {
  const { logIn } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [login, { loading, error }] = useMutation(LOGIN);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const result = await login({ variables: { email, password } }).catch(() => undefined);
    const payload = result?.data?.login;
    if (!payload) return;
    logIn({ token: payload.token, expiresAt: payload.expiresAt, user: payload.user });
    navigate(payload.user.role === 'ADMIN' ? '#/admin' : '#/products');
  };

  return (
    <section>
      <h1>Log in</h1>
      <form onSubmit={(e) => void submit(e)} className="stack">
        <label>
          Email <input name="email" type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} required />
        </label>
        <label>
          Password{' '}
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        <button type="submit" disabled={loading}>
          {loading ? 'Logging in…' : 'Log in'}
        </button>
      </form>
      <ErrorNote error={error} />
      <p className="hint">
        Demo: <code>admin@shop.example</code> / <code>admin-demo-password</code>; every demo customer&apos;s password is{' '}
        <code>customer-demo-password</code>.
      </p>
    </section>
  );
}
