import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';

export interface SessionUser {
  id: string;
  name: string;
  role: string;
}

export interface Session {
  token: string;
  expiresAt: string;
  user: SessionUser;
}

const KEY = 'shop.session';

function stored(): Session | undefined {
  try {
    const session = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Session | null;
    return session && Date.parse(session.expiresAt) > Date.now() ? session : undefined;
  } catch {
    return undefined;
  }
}

interface SessionState {
  session: Session | undefined;
  logIn(session: Session): void;
  logOut(): void;
}

const SessionContext = createContext<SessionState>({ session: undefined, logIn: () => {}, logOut: () => {} });

/**
 * The access token and who it belongs to, kept in localStorage until it expires (an hour). A page with an XSS hole
 * could read it; this app renders no HTML from data, and the static server sends a strict Content-Security-Policy.
 */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState(stored);
  const logIn = useCallback((next: Session) => {
    localStorage.setItem(KEY, JSON.stringify(next));
    setSession(next);
  }, []);
  const logOut = useCallback(() => {
    localStorage.removeItem(KEY);
    setSession(undefined);
  }, []);
  const value = useMemo(() => ({ session, logIn, logOut }), [session, logIn, logOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  return useContext(SessionContext);
}
