// A value that components can watch (see `useSignal` in ui.jsx): the session, the
// current route. Tiny on purpose; preact's own signals package would add 5 KB.
export function signal(initial) {
  let value = initial;
  const listeners = new Set();
  return {
    get: () => value,
    set(next) {
      value = next;
      for (const l of listeners) l(next);
    },
    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
