// Users (admins): create, change role, disable / enable.
import { useState } from 'preact/hooks';

import { api } from '../shared/api.js';
import { DataTable, ErrorNote, useLoad } from '../shared/ui.jsx';

const ROLES = ['viewer', 'broadcaster', 'admin'];

export function UsersPage() {
  const users = useLoad(() => api.get('/api/v1/users', { query: { limit: 100 } }), []);
  const [form, setForm] = useState({ username: '', password: '', role: 'broadcaster', email: '' });
  const [error, setError] = useState(null);
  const act = async (fn) => {
    setError(null);
    try {
      await fn();
      users.reload();
    } catch (err) {
      setError(err);
    }
  };
  const create = (e) => {
    e.preventDefault();
    act(async () => {
      await api.post('/api/v1/users', { body: { ...form, email: form.email || null } });
      setForm({ ...form, username: '', password: '', email: '' });
    });
  };
  const patch = (u, body) => act(() => api.patch('/api/v1/users/{user}', { path: { user: u.id }, body }));
  return (
    <>
      <h1>Users</h1>
      <ErrorNote error={error || users.error} />
      <DataTable caption="Accounts" columns={['User', 'Role', 'Status', 'Actions']}>
        {(users.data?.items || []).map((u) => (
          <tr key={u.id} data-user={u.username}>
            <td>
              <strong>{u.username}</strong>
              {u.email && <div class="muted">{u.email}</div>}
            </td>
            <td>
              <label>
                <span class="visually-hidden">Role of {u.username}</span>
                <select value={u.role} onChange={(e) => patch(u, { role: e.currentTarget.value })}>
                  {ROLES.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </label>
            </td>
            <td>{u.disabled ? <span class="badge">disabled</span> : <span class="badge">active</span>}</td>
            <td>
<div class="actions">
              <button type="button" class={u.disabled ? '' : 'danger'} onClick={() => patch(u, { disabled: !u.disabled })}>
                {u.disabled ? `Enable ${u.username}` : `Disable ${u.username}`}
              </button>
            </div>
</td>
          </tr>
        ))}
      </DataTable>
      <form class="grid-form" onSubmit={create} aria-labelledby="new-user-h">
        <h2 id="new-user-h">New account</h2>
        <label>
          User name
          <input required autoComplete="off" value={form.username} onInput={(e) => setForm({ ...form, username: e.currentTarget.value })} />
        </label>
        <label>
          Password
          <input
            required
            type="password"
            autoComplete="new-password"
            value={form.password}
            onInput={(e) => setForm({ ...form, password: e.currentTarget.value })}
          />
        </label>
        <label>
          Email (optional)
          <input type="email" value={form.email} onInput={(e) => setForm({ ...form, email: e.currentTarget.value })} />
        </label>
        <label>
          Role
          <select value={form.role} onChange={(e) => setForm({ ...form, role: e.currentTarget.value })}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary">
          Create account
        </button>
      </form>
    </>
  );
}
