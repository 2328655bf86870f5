// Events: the list by start time and a month calendar, create, move (new start), cancel.
import { useState } from 'preact/hooks';

import { api } from '../shared/api.js';
import { DataTable, ErrorNote, useLoad } from '../shared/ui.jsx';
import { EventCalendar } from './calendar.jsx';

/** `<input type="datetime-local">` value (local time) → RFC 3339. */
const toIso = (local) => new Date(local).toISOString();
const toLocal = (iso) => {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};

function MoveForm({ event, onDone }) {
  const [start, setStart] = useState(toLocal(event.scheduled_start));
  const [error, setError] = useState(null);
  const save = async (e) => {
    e.preventDefault();
    try {
      await api.patch('/api/v1/events/{event}', { path: { event: event.id }, body: { scheduled_start: toIso(start) } });
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form onSubmit={save} class="inline">
      <label>
        New start
        <input type="datetime-local" required value={start} onInput={(e) => setStart(e.currentTarget.value)} />
      </label>
      <button type="submit" class="primary">
        Move
      </button>
      <ErrorNote error={error} />
    </form>
  );
}

export function EventsPage() {
  const events = useLoad(() => api.get('/api/v1/events'), []);
  const streams = useLoad(() => api.get('/api/v1/streams', { query: { limit: 100 } }), []);
  const [form, setForm] = useState({ title: '', stream: '', start: '' });
  const [moving, setMoving] = useState(null);
  const [error, setError] = useState(null);
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await api.post('/api/v1/events', {
        body: { title: form.title, stream: form.stream || streams.data?.items?.[0]?.id, scheduled_start: toIso(form.start) },
      });
      setForm({ ...form, title: '' });
      events.reload();
    } catch (err) {
      setError(err);
    }
  };
  const cancel = async (ev) => {
    try {
      await api.patch('/api/v1/events/{event}', { path: { event: ev.id }, body: { state: 'cancelled' } });
      events.reload();
    } catch (err) {
      setError(err);
    }
  };
  const items = [...(events.data?.items || [])].sort((a, b) => Date.parse(a.scheduled_start) - Date.parse(b.scheduled_start));
  return (
    <>
      <h1>Events</h1>
      <ErrorNote error={error || events.error} />
      <DataTable caption="Events by start time" columns={['Starts', 'Event', 'State', 'Actions']}>
        {items.map((ev) => (
          <tr key={ev.id}>
            <td>
              <time dateTime={ev.scheduled_start}>{new Date(ev.scheduled_start).toLocaleString()}</time>
            </td>
            <td>{ev.title}</td>
            <td>
              <span class="badge">{ev.state}</span>
            </td>
            <td>
<div class="actions">
              {moving === ev.id ? (
                <MoveForm event={ev} onDone={() => (setMoving(null), events.reload())} />
              ) : (
                <button type="button" onClick={() => setMoving(ev.id)}>
                  Move
                </button>
              )}
              {!['ended', 'cancelled'].includes(ev.state) && (
                <button type="button" class="danger" onClick={() => cancel(ev)}>
                  Cancel event
                </button>
              )}
            </div>
</td>
          </tr>
        ))}
      </DataTable>
      <EventCalendar events={items} />
      <form class="grid-form" onSubmit={create} aria-labelledby="new-event-h">
        <h2 id="new-event-h">New event</h2>
        <label>
          Title
          <input required value={form.title} onInput={(e) => setForm({ ...form, title: e.currentTarget.value })} />
        </label>
        <label>
          Stream
          <select value={form.stream} onChange={(e) => setForm({ ...form, stream: e.currentTarget.value })}>
            {(streams.data?.items || []).map((s) => (
              <option key={s.id} value={s.id}>
                {s.title || s.slug}
              </option>
            ))}
          </select>
        </label>
        <label>
          Starts
          <input type="datetime-local" required value={form.start} onInput={(e) => setForm({ ...form, start: e.currentTarget.value })} />
        </label>
        <button type="submit" class="primary">
          Create event
        </button>
      </form>
    </>
  );
}
