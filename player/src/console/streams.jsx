// Streams: the list with live state, bitrate, ingest and transcode state, viewers and
// poster; create (the key shown once, with a copy button and the OBS settings), edit,
// rotate key, delete.
import { useEffect, useState } from 'preact/hooks';

import { api } from '../shared/api.js';
import { DataTable, ErrorNote, Poster, useLoad } from '../shared/ui.jsx';
import { useStreamPosterSrc } from './stream_poster.js';

const PROJECTIONS = ['equirect', 'equirect-stereo-tb', 'equirect-stereo-sbs', 'flat'];
const VISIBILITY = ['public', 'unlisted', 'private'];

/** Frames the stream lost (transcode drops and ingest discards), or null before any report. */
function droppedFrames(s) {
  const d = s.dropped_frames;
  return d ? d.transcode + d.ingest : null;
}

function formatBitrate(bps) {
  if (bps == null) return '—';
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
}

/** The key, once: copy button and OBS settings. */
function KeyPanel({ id, slug, streamKey, onClose }) {
  const [copied, setCopied] = useState(false);
  // The exact server URLs, as the server's listeners and configuration say.
  const ingest = useLoad(() => api.get('/api/v1/streams/{stream}/ingest', { path: { stream: id } }), [id]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(streamKey);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };
  return (
    <section class="keypanel" aria-labelledby="key-h" role="region">
      <h2 id="key-h">Stream key for {slug}</h2>
      <p>Shown this once: copy it now. Rotate it to get a new one.</p>
      <dl class="obs">
        <dt>Server</dt>
        <dd data-testid="obs-server">
          {ingest.data ? <code>{ingest.data.rtmp_url}</code> : <ErrorNote error={ingest.error} />}
        </dd>
        {ingest.data?.rtmps_url && (
          <>
            <dt>Server (TLS)</dt>
            <dd data-testid="obs-server-tls">
              <code>{ingest.data.rtmps_url}</code>
            </dd>
          </>
        )}
        <dt>Stream key</dt>
        <dd>
          <code data-testid="stream-key">{streamKey}</code>{' '}
          <button type="button" class="primary" onClick={copy}>
            {copied ? 'Copied' : 'Copy key'}
          </button>
        </dd>
        <dt>Keyframe interval</dt>
        <dd>2 s (OBS: Output → Streaming → Keyframe Interval 2)</dd>
      </dl>
      <span role="status" class="visually-hidden">
        {copied ? 'Key copied' : ''}
      </span>
      <button type="button" onClick={onClose}>
        Done
      </button>
    </section>
  );
}

function CreateForm({ onCreated }) {
  const [form, setForm] = useState({ slug: '', title: '', projection: 'equirect', visibility: 'public', record: true });
  const [error, setError] = useState(null);
  const set = (k) => (e) =>
    setForm({ ...form, [k]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const created = await api.post('/api/v1/streams', {
        body: {
          slug: form.slug,
          title: form.title || undefined,
          projection: form.projection,
          visibility: form.visibility,
          record: { enabled: form.record },
        },
      });
      setForm({ ...form, slug: '', title: '' });
      onCreated(created);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="grid-form" onSubmit={submit} aria-labelledby="new-stream-h">
      <h2 id="new-stream-h">New stream</h2>
      <label>
        Slug (in URLs)
        <input name="slug" required pattern="[a-z0-9][a-z0-9\-]*" value={form.slug} onInput={set('slug')} />
      </label>
      <label>
        Title
        <input name="title" value={form.title} onInput={set('title')} />
      </label>
      <label>
        Projection
        <select name="projection" value={form.projection} onChange={set('projection')}>
          {PROJECTIONS.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
      </label>
      <label>
        Visibility
        <select name="visibility" value={form.visibility} onChange={set('visibility')}>
          {VISIBILITY.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
      </label>
      <label class="check">
        <input type="checkbox" name="record" checked={form.record} onChange={set('record')} /> Record live sessions
      </label>
      <ErrorNote error={error} />
      <button type="submit" class="primary">
        Create stream
      </button>
    </form>
  );
}

function StreamPoster({ stream }) {
  return <Poster src={useStreamPosterSrc(stream)} title={stream.slug} />;
}

function Viewers({ slug, live }) {
  const [n, setN] = useState(null);
  useEffect(() => {
    let on = true;
    const load = () =>
      api.get('/api/v1/streams/{stream}/viewers', { path: { stream: slug } }).then(
        (v) => on && setN(v.concurrent),
        () => {},
      );
    load();
    const t = setInterval(load, 3000);
    return () => {
      on = false;
      clearInterval(t);
    };
  }, [slug, live]);
  return <span data-testid={`viewers-${slug}`}>{n ?? '—'}</span>;
}

function EditRow({ stream, onDone }) {
  const [title, setTitle] = useState(stream.title || '');
  const [description, setDescription] = useState(stream.description || '');
  const [visibility, setVisibility] = useState(stream.visibility);
  const [error, setError] = useState(null);
  const save = async (e) => {
    e.preventDefault();
    try {
      await api.patch('/api/v1/streams/{stream}', { path: { stream: stream.id }, body: { title, description, visibility } });
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="stack" onSubmit={save}>
      <label>
        Title
        <input value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
      </label>
      <label>
        Description
        <textarea value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </label>
      <label>
        Visibility
        <select value={visibility} onChange={(e) => setVisibility(e.currentTarget.value)}>
          {VISIBILITY.map((p) => (
            <option key={p}>{p}</option>
          ))}
        </select>
      </label>
      <ErrorNote error={error} />
      <button type="submit" class="primary">
        Save
      </button>{' '}
      <button type="button" onClick={onDone}>
        Cancel
      </button>
    </form>
  );
}

export function StreamsPage() {
  const streams = useLoad(() => api.get('/api/v1/streams', { query: { limit: 100 } }), []);
  const [shownKey, setShownKey] = useState(null);
  const [editing, setEditing] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    const t = setInterval(streams.reload, 2000);
    return () => clearInterval(t);
  }, [streams.reload]);
  const act = async (fn) => {
    setError(null);
    try {
      await fn();
      streams.reload();
    } catch (err) {
      setError(err);
    }
  };
  const rotate = (s) =>
    act(async () => {
      const { stream_key } = await api.post('/api/v1/streams/{stream}/key', { path: { stream: s.id } });
      setShownKey({ id: s.id, slug: s.slug, key: stream_key });
    });
  const remove = (s) => {
    if (!confirm(`Delete stream ${s.slug}? Its key stops working at once.`)) return;
    act(() => api.del('/api/v1/streams/{stream}', { path: { stream: s.id } }));
  };
  return (
    <>
      <h1>Streams</h1>
      {shownKey && <KeyPanel id={shownKey.id} slug={shownKey.slug} streamKey={shownKey.key} onClose={() => setShownKey(null)} />}
      <ErrorNote error={error || streams.error} />
      <DataTable caption="Streams" columns={['Poster', 'Stream', 'State', 'Bitrate', 'Viewers', 'Actions']}>
        {(streams.data?.items || []).map((s) => (
          <tr key={s.id} data-slug={s.slug}>
            <td class="thumb">
              <StreamPoster stream={s} />
            </td>
            <td>
              <strong>{s.title || s.slug}</strong>
              <div class="muted">
                {s.slug} · {s.projection} · {s.visibility}
              </div>
              {editing === s.id && <EditRow stream={s} onDone={() => (setEditing(null), streams.reload())} />}
            </td>
            <td>
              <span class={s.live ? 'badge live' : 'badge'} data-testid={`state-${s.slug}`}>
                {s.live ? 'Live' : 'Offline'}
              </span>
              <div class="muted">
                ingest {s.ingest?.status || '—'}
                {s.transcode?.state ? ` · transcode ${s.transcode.state}` : ''}
                {droppedFrames(s) != null && (
                  <>
                    {' · '}
                    <span data-testid={`dropped-${s.slug}`}>{droppedFrames(s)} frames dropped</span>
                  </>
                )}
              </div>
            </td>
            <td data-testid={`bitrate-${s.slug}`}>{formatBitrate(s.current_bitrate_bps)}</td>
            <td>
              <Viewers slug={s.slug} live={s.live} />
            </td>
            <td>
<div class="actions">
              <a href={`/s/${encodeURIComponent(s.slug)}`}>Watch</a>
              <button type="button" onClick={() => setEditing(editing === s.id ? null : s.id)}>
                Edit
              </button>
              <button type="button" onClick={() => rotate(s)}>
                Rotate key
              </button>
              <button type="button" class="danger" onClick={() => remove(s)}>
                Delete
              </button>
            </div>
</td>
          </tr>
        ))}
      </DataTable>
      <CreateForm
        onCreated={(created) => {
          setShownKey({ id: created.stream.id, slug: created.stream.slug, key: created.stream_key });
          streams.reload();
        }}
      />
    </>
  );
}
