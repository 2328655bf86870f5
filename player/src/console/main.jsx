// The admin console at `/admin`: one page per area, shown by role (broadcasters:
// streams, events, assets, analytics; admins also users and webhooks). Everything goes
// through the REST API. Heavy pieces (the tus uploader, the charts) are loaded by the
// pages that use them.
import '../shared/base.css';
import './console.css';

import { render } from 'preact';
import { useState } from 'preact/hooks';

import { session, signIn, signOut } from '../shared/api.js';
import { ErrorNote, Link, navigate, route, useSignal } from '../shared/ui.jsx';
import { AnalyticsPage } from './analytics.jsx';
import { AssetsPage } from './assets.jsx';
import { EventsPage } from './events.jsx';
import { StreamsPage } from './streams.jsx';
import { UsersPage } from './users.jsx';
import { WebhooksPage } from './webhooks.jsx';

const AREAS = [
  { path: 'streams', label: 'Streams', roles: ['admin', 'broadcaster'], Page: StreamsPage },
  { path: 'events', label: 'Events', roles: ['admin', 'broadcaster'], Page: EventsPage },
  { path: 'assets', label: 'Videos', roles: ['admin', 'broadcaster'], Page: AssetsPage },
  { path: 'analytics', label: 'Analytics', roles: ['admin', 'broadcaster'], Page: AnalyticsPage },
  { path: 'users', label: 'Users', roles: ['admin'], Page: UsersPage },
  { path: 'webhooks', label: 'Webhooks', roles: ['admin'], Page: WebhooksPage },
];

function SignInForm() {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await signIn(username, password);
    } catch (err) {
      setError(err.status === 401 ? new Error('Wrong user name or password.') : err);
    }
  };
  return (
    <main id="main" class="narrow">
      <h1>Sign in to the console</h1>
      <form class="stack" onSubmit={submit}>
        <label>
          User name
          <input name="username" autoComplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        <ErrorNote error={error} />
        <button type="submit" class="primary">
          Sign in
        </button>
      </form>
    </main>
  );
}

function App() {
  const current = useSignal(session);
  const path = useSignal(route);
  if (!current) return <SignInForm />;
  const role = current.user?.role;
  const areas = AREAS.filter((a) => a.roles.includes(role));
  const name = path.split('/')[2] || '';
  const area = areas.find((a) => a.path === name);
  if (!area && areas.length && path !== `/admin/${areas[0].path}`) {
    queueMicrotask(() => navigate(`/admin/${areas[0].path}`));
  }
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a href="/" class="brand">
          panocast
        </a>
        <nav aria-label="Console" class="areas">
          {areas.map((a) => (
            <Link key={a.path} href={`/admin/${a.path}`} aria-current={a === area ? 'page' : undefined}>
              {a.label}
            </Link>
          ))}
          <a href="/api/v1/docs">API</a>
        </nav>
        <div class="account">
          <span class="who">
            {current.user?.username} ({role})
          </span>
          <button type="button" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">{area ? <area.Page role={role} /> : <p>This account has no console pages.</p>}</main>
    </>
  );
}

render(<App />, document.getElementById('app'));
