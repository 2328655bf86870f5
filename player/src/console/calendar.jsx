// The events as a month grid (beside the events list): Monday-first weeks, each day
// with its events' titles (a count on a phone), previous / next month, and the
// keyboard of a date grid (WAI-ARIA APG): arrows move a day or a week, Home / End to
// the week's ends, Page Up / Page Down a month; the focused day's events are listed
// under the grid.
import { useEffect, useRef, useState } from 'preact/hooks';

/** `YYYY-MM-DD` of a local date. */
const dayKey = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
const addDays = (d, n) => new Date(d.getFullYear(), d.getMonth(), d.getDate() + n);
/** The same day of the month `n` months on, clamped to that month's length. */
function addMonths(d, n) {
  const first = new Date(d.getFullYear(), d.getMonth() + n, 1);
  const last = new Date(first.getFullYear(), first.getMonth() + 1, 0).getDate();
  return new Date(first.getFullYear(), first.getMonth(), Math.min(d.getDate(), last));
}
/** 0 for Monday … 6 for Sunday. */
const weekdayOf = (d) => (d.getDay() + 6) % 7;
const sameMonth = (a, b) => a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth();

/** The weeks (Monday first) that show `month`: 4 to 6 rows of 7 dates. */
function weeksOf(month) {
  const first = new Date(month.getFullYear(), month.getMonth(), 1);
  let day = addDays(first, -weekdayOf(first));
  const weeks = [];
  do {
    const week = [];
    for (let i = 0; i < 7; i += 1) {
      week.push(day);
      day = addDays(day, 1);
    }
    weeks.push(week);
  } while (sameMonth(day, first));
  return weeks;
}

const WEEKDAYS = [1, 2, 3, 4, 5, 6, 7].map((i) => {
  // 2024-01-01 was a Monday.
  const d = new Date(2024, 0, i);
  return {
    short: d.toLocaleDateString(undefined, { weekday: 'narrow' }),
    long: d.toLocaleDateString(undefined, { weekday: 'long' }),
  };
});

/** Where each key of the grid moves the focused day. */
const KEY_STEPS = {
  ArrowLeft: (d) => addDays(d, -1),
  ArrowRight: (d) => addDays(d, 1),
  ArrowUp: (d) => addDays(d, -7),
  ArrowDown: (d) => addDays(d, 7),
  Home: (d) => addDays(d, -weekdayOf(d)),
  End: (d) => addDays(d, 6 - weekdayOf(d)),
  PageUp: (d) => addMonths(d, -1),
  PageDown: (d) => addMonths(d, 1),
};

/** `events` (ScheduledEvent) by the local day they start. */
function byDay(events) {
  const days = new Map();
  for (const ev of events) {
    const key = dayKey(new Date(ev.scheduled_start));
    if (!days.has(key)) days.set(key, []);
    days.get(key).push(ev);
  }
  for (const list of days.values()) list.sort((a, b) => Date.parse(a.scheduled_start) - Date.parse(b.scheduled_start));
  return days;
}

export function EventCalendar({ events }) {
  const [focused, setFocused] = useState(() => new Date());
  const grid = useRef(null);
  const days = byDay(events);
  const weeks = weeksOf(focused);
  const monthLabel = focused.toLocaleDateString(undefined, { month: 'long', year: 'numeric' });
  const chosen = days.get(dayKey(focused)) || [];

  // Focus follows the focused day while the grid has the keyboard (not after the
  // month buttons). Asked of the document, not of a flag set by the key handler: keys
  // faster than a render leave an effect of an older day pending, which preact runs
  // first, and a flag it cleared kept the newest day from taking the focus.
  useEffect(() => {
    const table = grid.current;
    if (!table || !table.contains(document.activeElement)) return;
    table.querySelector(`[data-day="${dayKey(focused)}"]`)?.focus();
  }, [focused]);

  const onKeyDown = (e) => {
    const step = KEY_STEPS[e.key];
    if (!step) return;
    e.preventDefault();
    // From the latest day, however fast the keys come.
    setFocused((day) => step(day));
  };

  return (
    <section class="calendar" aria-labelledby="cal-h">
      <div class="cal-head">
        <button type="button" onClick={() => setFocused(addMonths(focused, -1))} aria-label="Previous month">
          ‹
        </button>
        <h2 id="cal-h" aria-live="polite">
          {monthLabel}
        </h2>
        <button type="button" onClick={() => setFocused(addMonths(focused, 1))} aria-label="Next month">
          ›
        </button>
      </div>
      <table role="grid" aria-labelledby="cal-h" ref={grid} onKeyDown={onKeyDown}>
        <thead>
          <tr>
            {WEEKDAYS.map((w) => (
              <th key={w.long} scope="col" abbr={w.long}>
                <span aria-hidden="true">{w.short}</span>
                <span class="visually-hidden">{w.long}</span>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {weeks.map((week) => (
            <tr key={dayKey(week[0])}>
              {week.map((d) => {
                const key = dayKey(d);
                const list = days.get(key) || [];
                const isFocused = key === dayKey(focused);
                const label = `${d.toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long' })}, ${
                  list.length === 1 ? '1 event' : `${list.length} events`
                }`;
                return (
                  <td
                    key={key}
                    class={`${sameMonth(d, focused) ? '' : 'other-month'}${list.length ? ' has-events' : ''}`}
                    aria-selected={isFocused ? 'true' : 'false'}
                  >
                    <button
                      type="button"
                      data-day={key}
                      tabIndex={isFocused ? 0 : -1}
                      aria-label={label}
                      aria-current={key === dayKey(new Date()) ? 'date' : undefined}
                      onClick={() => setFocused(d)}
                    >
                      <span class="cal-date" aria-hidden="true">
                        {d.getDate()}
                      </span>
                      {list.length > 0 && (
                        <span class="cal-count" aria-hidden="true">
                          {list.length}
                        </span>
                      )}
                      {list.slice(0, 2).map((ev) => (
                        <span key={ev.id} class="cal-title" aria-hidden="true">
                          {ev.title}
                        </span>
                      ))}
                      {list.length > 2 && (
                        <span class="cal-title muted" aria-hidden="true">
                          +{list.length - 2} more
                        </span>
                      )}
                    </button>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      <div aria-live="polite">
        <h3>{focused.toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' })}</h3>
        {chosen.length ? (
          <ul class="rows" aria-label="Events that day">
            {chosen.map((ev) => (
              <li key={ev.id}>
                <time dateTime={ev.scheduled_start}>
                  {new Date(ev.scheduled_start).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}
                </time>{' '}
                <strong>{ev.title}</strong> <span class="badge">{ev.state}</span>
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted">No events that day.</p>
        )}
      </div>
    </section>
  );
}
