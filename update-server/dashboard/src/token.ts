/**
 * The operator's bearer token lives in sessionStorage (gone when the tab closes). A `?token=`
 * in the URL is taken once and removed from the address bar and history at once, so it does not
 * linger in bookmarks, screenshots or the Referer of a later request.
 */
const KEY = 'edgeship.dashboard.token';

export function takeTokenFromUrl(location: Location, history: History, storage: Storage): void {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (token === null) return;
  url.searchParams.delete('token');
  history.replaceState(history.state, '', `${url.pathname}${url.search}${url.hash}`);
  if (token.trim()) storage.setItem(KEY, token.trim());
}

export function readToken(storage: Storage): string | null {
  return storage.getItem(KEY);
}

export function saveToken(storage: Storage, token: string): void {
  storage.setItem(KEY, token.trim());
}

export function forgetToken(storage: Storage): void {
  storage.removeItem(KEY);
}
