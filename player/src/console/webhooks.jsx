// Webhooks (admins): endpoints, the delivery log of one, replay, test send, secret
// rotation (the new secret shown once).
import { useEffect, useState } from 'preact/hooks';

import { api } from '../shared/api.js';
import { ErrorNote, useLoad } from '../shared/ui.jsx';

function Deliveries({ webhook }) {
  const log = useLoad(() => api.get('/api/v1/webhooks/{webhook}/deliveries', { path: { webhook: webhook.id } }), [webhook.id]);
  const [error, setError] = useState(null);
  useEffect(() => {
    const t = setInterval(log.reload, 2000);
    return () => clearInterval(t);
  }, [log.reload]);
  const replay = async (d) => {
    try {
      await api.post('/api/v1/webhooks/{webhook}/deliveries/{delivery}/replay', { path: { webhook: webhook.id, delivery: d.id } });
      log.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-label={`Deliveries to ${webhook.url}`}>
      <h3>Delivery log</h3>
      <ErrorNote error={error || log.error} />
      {log.data && !log.data.items.length && <p class="muted">Nothing delivered yet.</p>}
      <ul class="rows" data-testid="deliveries">
        {(log.data?.items || []).map((d) => {
          const last = d.attempts[d.attempts.length - 1];
          return (
            <li key={d.id}>
              <strong>{d.type}</strong> <span class="badge">{d.state}</span>{' '}
              {last && (
                <span class="muted">
                  {last.status_code ? `HTTP ${last.status_code}` : last.error} · {last.latency_ms} ms
                </span>
              )}{' '}
              <button type="button" onClick={() => replay(d)}>
                Replay
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

export function WebhooksPage() {
  const hooks = useLoad(() => api.get('/api/v1/webhooks'), []);
  const [url, setUrl] = useState('');
  const [secret, setSecret] = useState(null);
  const [open, setOpen] = useState(null);
  const [error, setError] = useState(null);
  const act = async (fn) => {
    setError(null);
    try {
      await fn();
      hooks.reload();
    } catch (err) {
      setError(err);
    }
  };
  const add = (e) => {
    e.preventDefault();
    act(async () => {
      const created = await api.post('/api/v1/webhooks', { body: { url } });
      setSecret({ url, secret: created.secret });
      setOpen(created.webhook.id);
      setUrl('');
    });
  };
  return (
    <>
      <h1>Webhooks</h1>
      {secret && (
        <section class="keypanel" aria-label="Signing secret">
          <p>
            Signing secret for {secret.url}, shown this once: <code>{secret.secret}</code>
          </p>
          <button type="button" onClick={() => setSecret(null)}>
            Done
          </button>
        </section>
      )}
      <ErrorNote error={error || hooks.error} />
      <ul class="rows">
        {(hooks.data?.items || []).map((w) => (
          <li key={w.id}>
            <strong>{w.url}</strong> {!w.enabled && <span class="badge">disabled</span>}
            <div class="actions">
              <button type="button" aria-expanded={open === w.id ? 'true' : 'false'} onClick={() => setOpen(open === w.id ? null : w.id)}>
                Delivery log
              </button>
              <button type="button" onClick={() => act(async () => (await api.post('/api/v1/webhooks/{webhook}/test', { path: { webhook: w.id } }), setOpen(w.id)))}>
                Send test
              </button>
              <button
                type="button"
                onClick={() =>
                  act(async () => {
                    const r = await api.post('/api/v1/webhooks/{webhook}/rotate-secret', { path: { webhook: w.id } });
                    setSecret({ url: w.url, secret: r.secret });
                  })
                }
              >
                Rotate secret
              </button>
              <button
                type="button"
                class="danger"
                onClick={() => confirm(`Delete the webhook to ${w.url}?`) && act(() => api.del('/api/v1/webhooks/{webhook}', { path: { webhook: w.id } }))}
              >
                Delete
              </button>
            </div>
            {open === w.id && <Deliveries webhook={w} />}
          </li>
        ))}
      </ul>
      <form class="grid-form" onSubmit={add} aria-labelledby="new-hook-h">
        <h2 id="new-hook-h">New endpoint</h2>
        <label>
          URL
          <input type="url" required value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary">
          Add endpoint
        </button>
      </form>
    </>
  );
}
