// The notifications bell: the unread count from `GET /api/v1/me/notifications`, kept
// current by the SSE feed (`/api/v1/me/notifications/stream`); a button opens the list
// (no hover-only control), "Mark all read" clears it.
import { useEffect, useState } from 'preact/hooks';

import { api, subscribeEvents } from './api.js';

export function Bell() {
  const [page, setPage] = useState({ items: [], unread_count: 0 });
  const [open, setOpen] = useState(false);
  useEffect(() => {
    let live = true;
    const load = () =>
      api.get('/api/v1/me/notifications', { query: { limit: 20 } }).then(
        (p) => live && setPage(p),
        () => {},
      );
    load();
    const stop = subscribeEvents('/api/v1/me/notifications/stream', {
      onEvent: (type) => {
        if (type === 'notification') load();
      },
    });
    return () => {
      live = false;
      stop();
    };
  }, []);
  const unread = page.unread_count || 0;
  const readAll = async () => {
    try {
      await api.post('/api/v1/me/notifications/read-all');
      setPage({ ...page, unread_count: 0, items: page.items.map((n) => ({ ...n, read_at: n.read_at || 'now' })) });
    } catch {
      // The count stays as it was; the next event reloads it.
    }
  };
  return (
    <div class="bell-wrap">
      <button
        type="button"
        class={unread ? 'bell has-unread' : 'bell'}
        aria-expanded={open ? 'true' : 'false'}
        aria-controls="notifications"
        aria-label={unread ? `Notifications, ${unread} unread` : 'Notifications'}
        onClick={() => setOpen(!open)}
      >
        <svg class="bell-icon" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false">
          <path
            fill="currentColor"
            d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z"
          />
        </svg>
        {unread > 0 && (
          <span class="count" aria-hidden="true">
            {unread}
          </span>
        )}
      </button>
      {open && (
        <div id="notifications" class="panel" role="region" aria-label="Notifications">
          {page.items.length ? (
            <ul>
              {page.items.map((n) => (
                <li key={n.id} class={n.read_at ? '' : 'unread'}>
                  <strong>{n.title}</strong>
                  <div>{n.text}</div>
                </li>
              ))}
            </ul>
          ) : (
            <p>No notifications.</p>
          )}
          {unread > 0 && (
            <button type="button" onClick={readAll}>
              Mark all read
            </button>
          )}
        </div>
      )}
    </div>
  );
}
