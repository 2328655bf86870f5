// The poster URL of a stream as the console may load it: an <img> cannot send the
// access token, so a private stream's poster is fetched with a playback token of
// that stream (asked once per stream), as the server gates posters like playback.
import { useEffect, useState } from 'preact/hooks';

import { api } from '../shared/api.js';

/** `stream` is a StreamView or null; null comes back until the URL is known. */
export function useStreamPosterSrc(stream) {
  const [token, setToken] = useState(null);
  const id = stream?.id;
  const isPrivate = stream?.visibility === 'private';
  useEffect(() => {
    setToken(null);
    if (!id || !isPrivate) return undefined;
    let on = true;
    api.post('/api/v1/streams/{stream}/playback-token', { path: { stream: id } }).then(
      (t) => on && setToken(t.token),
      () => {},
    );
    return () => {
      on = false;
    };
  }, [id, isPrivate]);
  if (!id) return null;
  const base = `/api/v1/streams/${encodeURIComponent(id)}/poster.jpg`;
  if (!isPrivate) return base;
  return token ? `${base}?token=${encodeURIComponent(token)}` : null;
}
