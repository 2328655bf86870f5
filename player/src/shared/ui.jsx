// Pieces the portal and the console share: the router, hooks over signals and API
// calls, and small accessible widgets.
import { useCallback, useEffect, useState } from 'preact/hooks';

import { signal } from './signal.js';

/** The current path; `navigate` changes it without a page load. */
export const route = signal(location.pathname);
window.addEventListener('popstate', () => route.set(location.pathname));

export function navigate(path) {
  if (path === location.pathname + location.search) return;
  history.pushState(null, '', path);
  route.set(location.pathname);
  window.scrollTo(0, 0);
}

/** Re-renders when `s` changes. */
export function useSignal(s) {
  const [value, setValue] = useState(s.get());
  useEffect(() => {
    setValue(s.get());
    return s.watch(setValue);
  }, [s]);
  return value;
}

/**
 * Runs `load` when `deps` change: `{ data, error, loading, reload }`. A reload keeps the
 * old data on screen until the new arrives.
 */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** An in-app link: a real `<a href>` (works with a keyboard, opens in a new tab). */
export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}

/** A problem's message for a person. */
export function ErrorNote({ error }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.message || String(error)}
    </p>
  );
}

/** A table that scrolls sideways on narrow screens, captioned for screen readers. */
export function DataTable({ caption, columns, children }) {
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" key={c}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** A poster image that falls back to a title card while the server has none (404). */
export function Poster({ src, title }) {
  const [failed, setFailed] = useState(false);
  useEffect(() => setFailed(false), [src]);
  if (!src || failed) {
    return (
      <div class="poster poster-card" aria-hidden="true">
        <span>{title}</span>
      </div>
    );
  }
  return <img class="poster" src={src} alt="" loading="lazy" onError={() => setFailed(true)} />;
}

/** "in 2 h 5 min", "in 40 s", "now" until `iso`. */
export function countdown(iso, now = Date.now()) {
  const ms = Date.parse(iso) - now;
  if (!(ms > 0)) return 'starting now';
  const s = Math.round(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `in ${d} d ${h} h`;
  if (h > 0) return `in ${h} h ${m} min`;
  if (m > 0) return `in ${m} min ${s % 60} s`;
  return `in ${s} s`;
}

/** Re-renders every `ms` (countdowns). */
export function useTicker(ms) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** Loads the 360 player bundle once (it mounts on `#panocast` when it runs). */
export function loadPlayer(version) {
  const script = document.createElement('script');
  script.type = 'module';
  script.src = `/player/player.js?v=${encodeURIComponent(version || '')}&t=${Date.now()}`;
  document.body.appendChild(script);
  return () => script.remove();
}
