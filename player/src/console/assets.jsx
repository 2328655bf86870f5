// Videos: drag-and-drop (or pick) a file, uploaded with tus (resumable, progress bar);
// the library with state and job progress, retry/cancel of jobs, play, M4A/MP3
// download, delete. The tus client loads only on this page.
import { useEffect, useRef, useState } from 'preact/hooks';

import { api, authHeader } from '../shared/api.js';
import { DataTable, ErrorNote, useLoad } from '../shared/ui.jsx';

function Uploader({ onDone }) {
  const [over, setOver] = useState(false);
  const [progress, setProgress] = useState(null);
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const input = useRef(null);
  const start = async (file) => {
    if (!file) return;
    setError(null);
    setName(file.name);
    setProgress(0);
    const { Upload } = await import('tus-js-client');
    const upload = new Upload(file, {
      endpoint: '/api/v1/uploads',
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000],
      metadata: { filename: file.name, title: file.name.replace(/\.[^.]+$/, ''), projection: 'equirect' },
      // A fresh (quietly refreshed) token on every request of a long upload.
      onBeforeRequest: async (req) => {
        const h = await authHeader();
        if (h.authorization) req.setHeader('Authorization', h.authorization);
      },
      onProgress: (sent, total) => setProgress(total ? Math.round((sent / total) * 100) : 0),
      onError: (e) => {
        setError(e);
        setProgress(null);
      },
      onSuccess: () => {
        setProgress(100);
        onDone();
      },
    });
    upload.start();
  };
  return (
    <section aria-labelledby="upload-h">
      <h2 id="upload-h">Upload a video</h2>
      <div
        class={over ? 'dropzone over' : 'dropzone'}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          start(e.dataTransfer.files[0]);
        }}
      >
        <p>Drop a video file here, or</p>
        <label class="filepick">
          <span class="visually-hidden">Video file</span>
          <input ref={input} type="file" accept="video/*,.mp4,.mov,.mkv,.flv" onChange={(e) => start(e.currentTarget.files[0])} />
        </label>
      </div>
      {progress !== null && (
        <div>
          <label for="upload-progress">
            Uploading {name}: {progress}%
          </label>
          <progress id="upload-progress" max="100" value={progress} />
        </div>
      )}
      <ErrorNote error={error} />
    </section>
  );
}

/** Downloads with the bearer header (private assets), saved under the server's name. */
async function download(asset, format) {
  const response = await fetch(`/api/v1/assets/${encodeURIComponent(asset.id)}/audio.${format}`, { headers: await authHeader() });
  if (!response.ok) throw new Error(`The ${format.toUpperCase()} is not ready (HTTP ${response.status}).`);
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = `${asset.title || asset.id}.${format}`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function AssetsPage() {
  const assets = useLoad(() => api.get('/api/v1/assets', { query: { limit: 100 } }), []);
  const jobs = useLoad(() => api.get('/api/v1/jobs', { query: { limit: 100 } }), []);
  const [error, setError] = useState(null);
  const busy = (assets.data?.items || []).some((a) => a.state === 'preparing');
  useEffect(() => {
    const t = setInterval(() => {
      assets.reload();
      jobs.reload();
    }, busy ? 1000 : 5000);
    return () => clearInterval(t);
  }, [busy, assets.reload, jobs.reload]);
  const act = async (fn) => {
    setError(null);
    try {
      await fn();
      assets.reload();
      jobs.reload();
    } catch (err) {
      setError(err);
    }
  };
  const jobOf = (asset) => (jobs.data?.items || []).find((j) => j.subject === asset.id);
  return (
    <>
      <h1>Videos</h1>
      <Uploader onDone={() => (assets.reload(), jobs.reload())} />
      <ErrorNote error={error || assets.error} />
      <DataTable caption="Videos" columns={['Video', 'State', 'Job', 'Actions']}>
        {(assets.data?.items || []).map((a) => {
          const job = jobOf(a);
          return (
            <tr key={a.id} data-asset={a.id}>
              <td>
                <strong>{a.title}</strong>
                <div class="muted">
                  {a.recording ? 'recording' : 'upload'}
                  {a.duration_s != null ? ` · ${Math.round(a.duration_s)} s` : ''}
                  {(a.renditions || []).map((r) => ` · ${r.kind} ${r.state}`).join('')}
                </div>
              </td>
              <td>
                <span class="badge" data-testid="asset-state">
                  {a.state}
                </span>
                {a.message && <div class="error">{a.message}</div>}
              </td>
              <td>
                {job && (
                  <>
                    <span class="muted">
                      {job.kind} {job.state}
                    </span>
                    <progress max="100" value={job.progress} aria-label={`${job.kind} progress`} />
                    {['queued', 'running'].includes(job.state) && (
                      <button type="button" onClick={() => act(() => api.post('/api/v1/jobs/{job}/cancel', { path: { job: job.id } }))}>
                        Cancel job
                      </button>
                    )}
                    {['failed', 'cancelled'].includes(job.state) && (
                      <button type="button" onClick={() => act(() => api.post('/api/v1/jobs/{job}/retry', { path: { job: job.id } }))}>
                        Retry job
                      </button>
                    )}
                  </>
                )}
              </td>
              <td>
<div class="actions">
                {a.state === 'ready' && (
                  <>
                    {(a.renditions || []).some((r) => r.kind === 'hls' && r.state === 'ready') && (
                      <a href={`/v/${encodeURIComponent(a.id)}`}>Play</a>
                    )}
                    <button type="button" onClick={() => act(() => download(a, 'm4a'))}>
                      Download M4A
                    </button>
                    <button type="button" onClick={() => act(() => download(a, 'mp3'))}>
                      Download MP3
                    </button>
                  </>
                )}
                <button
                  type="button"
                  class="danger"
                  onClick={() => confirm(`Delete ${a.title}?`) && act(() => api.del('/api/v1/assets/{asset}', { path: { asset: a.id } }))}
                >
                  Delete
                </button>
              </div>
</td>
            </tr>
          );
        })}
      </DataTable>
    </>
  );
}
