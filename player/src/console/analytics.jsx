// Analytics of one stream: concurrent viewers over the last 24 h (uPlot, loaded by this
// page only), the live session's figures (peak, views, watch time, rendition share)
// and the 360 heatmap drawn over the stream's equirectangular poster.
import 'uplot/dist/uPlot.min.css';

import { useEffect, useRef, useState } from 'preact/hooks';

import { api } from '../shared/api.js';
import { ErrorNote, Poster, useLoad } from '../shared/ui.jsx';
import { useStreamPosterSrc } from './stream_poster.js';

function Chart({ points, label }) {
  const box = useRef(null);
  useEffect(() => {
    let plot;
    let on = true;
    (async () => {
      const { default: UPlot } = await import('uplot');
      if (!on || !box.current) return;
      const xs = points.map((p) => Date.parse(p.t) / 1000);
      const ys = points.map((p) => p.value);
      plot = new UPlot(
        {
          width: Math.min(box.current.clientWidth || 600, 900),
          height: 240,
          series: [{}, { label, stroke: '#1f5f99', width: 2, fill: 'rgba(31,95,153,0.15)' }],
          axes: [{}, { label }],
        },
        [xs, ys],
        box.current,
      );
    })();
    return () => {
      on = false;
      plot?.destroy();
    };
  }, [points, label]);
  return <div class="chart" ref={box} role="img" aria-label={`${label} over time, ${points.length} points`} />;
}

/** The 18×36 heatmap bins as translucent cells over the poster. */
function Heatmap({ bins, poster, title }) {
  const canvas = useRef(null);
  useEffect(() => {
    const c = canvas.current;
    if (!c || !bins?.length) return;
    const rows = bins.length;
    const cols = bins[0].length;
    c.width = cols * 10;
    c.height = rows * 10;
    const ctx = c.getContext('2d');
    const max = Math.max(...bins.flat(), 1e-9);
    ctx.clearRect(0, 0, c.width, c.height);
    bins.forEach((row, r) =>
      row.forEach((v, col) => {
        if (!v) return;
        // Row 0 is straight down: the bottom of the equirect frame.
        ctx.fillStyle = `rgba(255, 60, 0, ${Math.min(0.85, (v / max) * 0.85)})`;
        ctx.fillRect(col * 10, (rows - 1 - r) * 10, 10, 10);
      }),
    );
  }, [bins]);
  return (
    <div class="heat">
      <Poster src={poster} title={title} />
      <canvas ref={canvas} role="img" aria-label="Where viewers looked, over the stream's poster" />
    </div>
  );
}

export function AnalyticsPage() {
  const streams = useLoad(() => api.get('/api/v1/streams', { query: { limit: 100 } }), []);
  const [chosen, setChosen] = useState('');
  const id = chosen || streams.data?.items?.[0]?.id || '';
  const posterSrc = useStreamPosterSrc((streams.data?.items || []).find((s) => s.id === id) || null);
  const series = useLoad(
    () => (id ? api.get('/api/v1/analytics/timeseries', { query: { metric: 'concurrent', scope: 'stream', id } }) : Promise.resolve(null)),
    [id],
  );
  const watch = useLoad(
    () => (id ? api.get('/api/v1/analytics/timeseries', { query: { metric: 'watch_seconds', scope: 'stream', id, interval: '1h' } }) : Promise.resolve(null)),
    [id],
  );
  const heat = useLoad(() => (id ? api.get('/api/v1/analytics/heatmap', { query: { scope: 'stream', id } }) : Promise.resolve(null)), [id]);
  const viewers = useLoad(() => (id ? api.get('/api/v1/streams/{stream}/viewers', { path: { stream: id } }) : Promise.resolve(null)), [id]);
  const session = viewers.data?.live_session;
  const summary = useLoad(
    () => (session ? api.get('/api/v1/analytics/sessions/{live_session}', { path: { live_session: session } }) : Promise.resolve(null)),
    [session],
  );
  const watchSeconds = (watch.data?.points || []).reduce((s, p) => s + p.value, 0);
  return (
    <>
      <h1>Analytics</h1>
      <label>
        Stream
        <select value={id} onChange={(e) => setChosen(e.currentTarget.value)}>
          {(streams.data?.items || []).map((s) => (
            <option key={s.id} value={s.id}>
              {s.title || s.slug}
            </option>
          ))}
        </select>
      </label>
      <ErrorNote error={series.error || heat.error} />
      <div class="figures">
        <div class="figure">
          Viewers now<strong>{viewers.data?.concurrent ?? '—'}</strong>
        </div>
        <div class="figure">
          Peak<strong>{viewers.data?.peak ?? '—'}</strong>
        </div>
        <div class="figure">
          Watch time, 24 h<strong>{Math.round(watchSeconds / 60)} min</strong>
        </div>
        {summary.data && (
          <div class="figure">
            Views this session<strong>{summary.data.views}</strong>
          </div>
        )}
      </div>
      {summary.data?.renditions?.length > 0 && (
        <>
          <h2>Rendition share</h2>
          <ul class="rows">
            {summary.data.renditions.map((r) => (
              <li key={r.rendition}>
                {r.rendition}: {Math.round((r.share ?? 0) * 100)}%
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>Viewers over time</h2>
      {series.data &&
        (series.data.points.length ? (
          <Chart points={series.data.points} label="concurrent viewers" />
        ) : (
          <p class="muted">No viewers in the last 24 hours.</p>
        ))}
      <h2>Where viewers look</h2>
      {heat.data && (
        <Heatmap
          bins={heat.data.overall?.bins}
          poster={posterSrc}
          title="no poster yet"
        />
      )}
    </>
  );
}
