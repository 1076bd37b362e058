import { useEffect, useState } from 'react';

/** The page a hash like `#/order/abc` names: its segments, and its query parameters. */
export interface Route {
  segments: string[];
  params: URLSearchParams;
}

function current(): Route {
  const [path = '', query = ''] = location.hash.replace(/^#/, '').split('?');
  return { segments: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
}

/** Hash routing: pages are bookmarkable and the static server needs no rewrites. */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}

export function navigate(hash: string): void {
  location.hash = hash;
}
