// The viewer portal at `/`: live now, upcoming events, the on-demand library, search,
// a page per stream (`/s/{slug}`) and asset (`/v/{asset}`) with the 360 player, and
// sign in / sign up / sign out. Only the REST API; the player itself is the `/watch`
// page in an <iframe>, so its bundle loads only on pages that play.
import '../shared/base.css';
import './portal.css';

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';

import { api, session, signIn, signOut, signUp } from '../shared/api.js';
import { Bell } from '../shared/bell.jsx';
import { ErrorNote, Link, Poster, countdown, navigate, route, useLoad, useSignal, useTicker } from '../shared/ui.jsx';

const streamPoster = (slug) => `/api/v1/streams/${encodeURIComponent(slug)}/poster.jpg`;
const assetPoster = (id) => `/api/v1/assets/${encodeURIComponent(id)}/poster.jpg`;

/** An asset whose on-demand HLS is ready. */
const playable = (a) => a.state === 'ready' && (a.renditions || []).some((r) => r.kind === 'hls' && r.state === 'ready');

function Header() {
  const current = useSignal(session);
  const [q, setQ] = useState(new URLSearchParams(location.search).get('q') || '');
  const onSearch = (e) => {
    e.preventDefault();
    navigate(q.trim() ? `/search?q=${encodeURIComponent(q.trim())}` : '/');
  };
  return (
    <header class="top">
      <Link href="/" class="brand">
        panocast
      </Link>
      <form role="search" class="search" onSubmit={onSearch}>
        <label for="q" class="visually-hidden">
          Search streams, events and videos
        </label>
        <input id="q" type="search" placeholder="Search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        <button type="submit">Search</button>
      </form>
      <nav class="account" aria-label="Account">
        {current ? (
          <>
            <Bell />
            {current.user?.role !== 'viewer' && <a href="/admin">Console</a>}
            <span class="who">{current.user?.username}</span>
            <button type="button" onClick={() => signOut()}>
              Sign out
            </button>
          </>
        ) : (
          <Link href="/signin">Sign in</Link>
        )}
      </nav>
    </header>
  );
}

function StreamCard({ stream }) {
  return (
    <li class="card">
      <Link href={`/s/${encodeURIComponent(stream.slug)}`}>
        <Poster src={streamPoster(stream.slug)} title={stream.title || stream.slug} />
        <span class="card-title">{stream.title || stream.slug}</span>
      </Link>
      {stream.live && <span class="badge live">Live</span>}
    </li>
  );
}

function Home() {
  const current = useSignal(session);
  const now = useTicker(1000);
  const streams = useLoad(() => api.get('/api/v1/streams', { query: { limit: 100 } }), [current?.user?.id]);
  const assets = useLoad(() => api.get('/api/v1/assets', { query: { limit: 100 } }), [current?.user?.id]);
  // Signed out, the server lists public streams' announced events.
  const events = useLoad(() => api.get('/api/v1/events'), [current?.user?.id]);
  // Live state changes while the page is open: look again every 5 s.
  useEffect(() => {
    const t = setInterval(streams.reload, 5000);
    return () => clearInterval(t);
  }, [streams.reload]);
  const live = (streams.data?.items || []).filter((s) => s.live);
  const upcoming = (events.data?.items || [])
    .filter((e) => e.state === 'scheduled' || e.state === 'starting_soon')
    .sort((a, b) => Date.parse(a.scheduled_start) - Date.parse(b.scheduled_start));
  const library = (assets.data?.items || []).filter(playable);
  return (
    <main id="main">
      <section aria-labelledby="live-h">
        <h1 id="live-h">Live now</h1>
        <ErrorNote error={streams.error} />
        {live.length ? (
          <ul class="cards">
            {live.map((s) => (
              <StreamCard key={s.id} stream={s} />
            ))}
          </ul>
        ) : (
          !streams.loading && <p class="muted">Nothing is live right now.</p>
        )}
      </section>
      <section aria-labelledby="upcoming-h">
        <h2 id="upcoming-h">Upcoming</h2>
        <ErrorNote error={events.error} />
        {upcoming.length ? (
          <ul class="rows" aria-labelledby="upcoming-h">
            {upcoming.map((e) => (
              <li key={e.id}>
                <strong>{e.title}</strong> <span class="countdown">{countdown(e.scheduled_start, now)}</span>{' '}
                <time class="muted" dateTime={e.scheduled_start}>
                  {new Date(e.scheduled_start).toLocaleString()}
                </time>
              </li>
            ))}
          </ul>
        ) : (
          !events.loading && <p class="muted">No events are scheduled.</p>
        )}
      </section>
      <section aria-labelledby="library-h">
        <h2 id="library-h">On demand</h2>
        <ErrorNote error={assets.error} />
        {library.length ? (
          <ul class="cards">
            {library.map((a) => (
              <li class="card" key={a.id}>
                <Link href={`/v/${encodeURIComponent(a.id)}`}>
                  <Poster src={assetPoster(a.id)} title={a.title} />
                  <span class="card-title">{a.title}</span>
                </Link>
              </li>
            ))}
          </ul>
        ) : (
          !assets.loading && <p class="muted">No videos yet.</p>
        )}
        <h2 class="visually-hidden">All streams</h2>
        {(streams.data?.items || []).some((s) => !s.live) && (
          <>
            <h3>Channels</h3>
            <ul class="cards">
              {(streams.data?.items || [])
                .filter((s) => !s.live)
                .map((s) => (
                  <StreamCard key={s.id} stream={s} />
                ))}
            </ul>
          </>
        )}
      </section>
    </main>
  );
}

function hitHref(hit) {
  if (hit.type === 'stream') return `/s/${encodeURIComponent(hit.slug || hit.id)}`;
  if (hit.type === 'asset') return `/v/${encodeURIComponent(hit.id)}`;
  return hit.stream ? `/s/${encodeURIComponent(hit.stream)}` : '/';
}

function Search() {
  const q = new URLSearchParams(location.search).get('q') || '';
  const results = useLoad(() => api.get('/api/v1/search', { query: { q } }), [q]);
  return (
    <main id="main">
      <h1>Results for “{q}”</h1>
      <ErrorNote error={results.error} />
      {results.data && !results.data.items.length && <p class="muted">Nothing found.</p>}
      <ul class="rows" aria-label="Search results">
        {(results.data?.items || []).map((hit) => (
          <li key={`${hit.type}-${hit.id}`}>
            <span class="badge">{hit.type}</span> <Link href={hitHref(hit)}>{hit.title}</Link>
            {hit.live && <span class="badge live">Live</span>}
          </li>
        ))}
      </ul>
    </main>
  );
}

function SubscribeButton({ stream }) {
  const current = useSignal(session);
  const subs = useLoad(() => (current ? api.get('/api/v1/me/subscriptions') : Promise.resolve(null)), [current?.user?.id]);
  const [error, setError] = useState(null);
  if (!current) {
    return (
      <p>
        <Link href="/signin">Sign in</Link> to be told when it goes live.
      </p>
    );
  }
  const mine = (subs.data?.items || []).find((s) => s.stream_id === stream.id);
  const toggle = async () => {
    setError(null);
    try {
      if (mine) await api.del('/api/v1/me/subscriptions/{subscription}', { path: { subscription: mine.id } });
      else await api.post('/api/v1/me/subscriptions', { body: { stream: stream.id } });
      subs.reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <button type="button" class="primary" aria-pressed={mine ? 'true' : 'false'} onClick={toggle} disabled={subs.loading && !subs.data}>
        {mine ? 'Unsubscribe' : 'Subscribe'}
      </button>
      <ErrorNote error={error} />
    </>
  );
}

/**
 * The player page's URL: private items carry a playback token the signed-in user asks
 * for (the server never writes it into the page; the player passes it on).
 */
function usePlayerSrc(base, item, tokenPath, param) {
  const [src, setSrc] = useState(null);
  useEffect(() => {
    if (!item) return undefined;
    let on = true;
    if (item.visibility === 'public') setSrc(base);
    else {
      api.post(tokenPath, { path: { [param]: item.id } }).then(
        (t) => on && setSrc(`${base}?token=${encodeURIComponent(t.token)}`),
        () => on && setSrc(base),
      );
    }
    return () => {
      on = false;
    };
  }, [base, item?.id, item?.visibility]);
  return src;
}

function StreamPage({ slug }) {
  const stream = useLoad(() => api.get('/api/v1/streams/{stream}', { path: { stream: slug } }), [slug]);
  const s = stream.data;
  const src = usePlayerSrc(`/watch/${encodeURIComponent(slug)}`, s, '/api/v1/streams/{stream}/playback-token', 'stream');
  return (
    <main id="main">
      <ErrorNote error={stream.error} />
      {s && (
        <>
          <div class="player-frame">
            <iframe
              src={src || 'about:blank'}
              title={`360 player: ${s.title || s.slug}`}
              allow="fullscreen; xr-spatial-tracking; gyroscope; accelerometer; autoplay"
              allowFullScreen
            />
          </div>
          <h1>
            {s.title || s.slug} {s.live && <span class="badge live">Live</span>}
          </h1>
          {s.description && <p class="description">{s.description}</p>}
          <SubscribeButton stream={s} />
        </>
      )}
    </main>
  );
}

function AssetPage({ id }) {
  const asset = useLoad(() => api.get('/api/v1/assets/{asset}', { path: { asset: id } }), [id]);
  const a = asset.data;
  const src = usePlayerSrc(`/watch/vod/${encodeURIComponent(id)}`, a, '/api/v1/assets/{asset}/playback-token', 'asset');
  return (
    <main id="main">
      <ErrorNote error={asset.error} />
      {a && (
        <>
          <div class="player-frame">
            <iframe
              src={src || 'about:blank'}
              title={`360 player: ${a.title}`}
              allow="fullscreen; xr-spatial-tracking; gyroscope; accelerometer; autoplay"
              allowFullScreen
            />
          </div>
          <h1>{a.title}</h1>
          {a.duration_s != null && <p class="muted">{Math.round(a.duration_s)} s</p>}
        </>
      )}
    </main>
  );
}

function SignIn() {
  const [mode, setMode] = useState('in');
  // Sign-up is offered only where the server takes new accounts.
  const settings = useLoad(() => api.get('/api/v1/auth/config'), []);
  const open = settings.data?.open_registration === true;
  const [form, setForm] = useState({ username: '', password: '', email: '' });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'in') await signIn(form.username, form.password);
      else await signUp(form.username, form.password, form.email);
      navigate('/');
    } catch (err) {
      if (mode === 'up' && (err.status === 403 || err.status === 404)) {
        setError(new Error('This server does not take new accounts; ask an admin for one.'));
      } else setError(err.status === 401 ? new Error('Wrong user name or password.') : err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="narrow">
      <h1>{mode === 'in' ? 'Sign in' : 'Create an account'}</h1>
      <form onSubmit={submit} class="stack">
        <label>
          User name
          <input name="username" autoComplete="username" required value={form.username} onInput={set('username')} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={mode === 'in' ? 'current-password' : 'new-password'}
            required
            value={form.password}
            onInput={set('password')}
          />
        </label>
        {mode === 'up' && (
          <label>
            Email (optional)
            <input name="email" type="email" autoComplete="email" value={form.email} onInput={set('email')} />
          </label>
        )}
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {mode === 'in' ? 'Sign in' : 'Sign up'}
        </button>
      </form>
      {open ? (
        <p>
          {mode === 'in' ? 'No account yet? ' : 'Have an account? '}
          <button type="button" class="link" onClick={() => setMode(mode === 'in' ? 'up' : 'in')}>
            {mode === 'in' ? 'Sign up' : 'Sign in'}
          </button>
        </p>
      ) : (
        settings.data && <p class="muted">Accounts here are made by an admin; ask one for yours.</p>
      )}
    </main>
  );
}

function App() {
  const path = useSignal(route);
  let page;
  let m;
  if ((m = path.match(/^\/s\/([^/]+)$/))) page = <StreamPage slug={decodeURIComponent(m[1])} />;
  else if ((m = path.match(/^\/v\/([^/]+)$/))) page = <AssetPage id={decodeURIComponent(m[1])} />;
  else if (path === '/signin') page = <SignIn />;
  else if (path === '/search') page = <Search key={location.search} />;
  else page = <Home />;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Header />
      {page}
    </>
  );
}

render(<App />, document.getElementById('app'));
