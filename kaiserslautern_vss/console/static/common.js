'use strict';
// Shared by the console pages: POST with the session's CSRF token, go to login when the session ended.
const vss = {
  csrf: () => document.querySelector('meta[name="csrf-token"]').content,
  async post(url, fields) {
    const response = await fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: {'X-CSRF-Token': vss.csrf()}, body: new URLSearchParams(fields),
    });
    vss.checkSession(response);
    return response;
  },
  checkSession(response) {
    if (response.status === 401) window.location.assign('/login');
  },
};
