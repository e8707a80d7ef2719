// SPDX-License-Identifier: LGPL-2.1-or-later
// The login page: POST /login with the API token in the Authorization
// header and no body (web/session.c); the answer sets the session cookie.
'use strict';
document.getElementById('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = document.getElementById('token').value.trim();
  const error = document.getElementById('error');
  error.textContent = '';
  try {
    const r = await fetch('/login', {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: { Authorization: 'Bearer ' + token },
    });
    if (r.ok) {
      location.replace('/');
      return;
    }
    const j = await r.json().catch(() => ({}));
    error.textContent = r.status === 401 ? 'That token is not valid (or was revoked).'
                                         : (j.error || 'Login failed: HTTP ' + r.status);
  } catch (e) {
    error.textContent = 'Cannot reach the server: ' + e.message;
  }
});
