// pages/login.js: sign in with an access key, or with the one-time code of `berth console`
// (/console/login?code=CODE). The server answers with a session cookie (HttpOnly) and the
// CSRF token; then we go to ?next= (a /console path) or the overview.

import * as api from '../api.js';
import {h, field, showError} from '../ui.js';

export default async function render(ctx) {
  const next = safeNext(ctx.query.get('next'));
  const errSlot = h('div', {class: 'form-error', 'aria-live': 'polite'});
  const keyId = h('input', {type: 'text', name: 'access_key_id', autocomplete: 'username',
    spellcheck: 'false', required: true, dataset: {test: 'login-key-id'}});
  const secret = h('input', {type: 'password', name: 'secret_access_key',
    autocomplete: 'current-password', required: true, dataset: {test: 'login-secret'}});
  const submit = h('button', {type: 'submit', class: 'primary', dataset: {test: 'login-submit'}}, 'Sign in');
  const form = h('form', {class: 'login-form', dataset: {test: 'login-form'}},
    field('Access key ID', keyId),
    field('Secret access key', secret),
    errSlot,
    submit);

  const done = (s) => {
    ctx.setSession(s);
    ctx.navigate(next, {replace: true});
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    showError(errSlot, null);
    try {
      done(await api.signIn({access_key_id: keyId.value.trim(), secret_access_key: secret.value}));
    } catch (err) {
      showError(errSlot, err);
      submit.disabled = false;
      secret.select();
    }
  });

  const card = h('div', {class: 'login-card card'},
    h('div', {class: 'brand login-brand'}, h('span', {class: 'brand-mark', 'aria-hidden': 'true'}, '⚓'), 'berth'),
    h('h1', null, 'Sign in'),
    h('p', {class: 'muted'}, 'Use an access key (as for the berth CLI), or run ',
      h('code', null, 'berth console'), ' for a one-time sign-in link.'),
    form);
  ctx.root.replaceChildren(h('main', {class: 'login-page'}, card));

  const code = ctx.query.get('code');
  if (code) {
    // Take the code out of the address bar (and history) before using it.
    history.replaceState(null, '', ctx.url('/login') + (next !== '/' ? '?next=' + encodeURIComponent(next) : ''));
    // A click, not at once: a link someone else sent could otherwise sign this browser in as
    // them without the user noticing.
    const linkErr = h('div', {class: 'form-error', 'aria-live': 'polite'});
    const go = h('button', {type: 'button', class: 'primary', dataset: {test: 'login-link-continue'}},
      'Sign in with this link');
    go.addEventListener('click', async () => {
      go.disabled = true;
      showError(linkErr, null);
      try {
        done(await api.signIn({code}));
      } catch (err) {
        showError(linkErr, err);
      }
    });
    card.insertBefore(h('div', {class: 'link-signin'},
      h('p', null, 'This page was opened with a one-time sign-in link from ', h('code', null, 'berth console'),
        '. Use it only if you ran that command yourself.'),
      go, linkErr), form);
    go.focus();
    return;
  } else {
    // Already signed in (a bookmarked login page): go on.
    try {
      const s = await api.getSession();
      if (ctx.alive()) done(s);
      return;
    } catch { /* not signed in: show the form */ }
  }
  keyId.focus();
}

// Only paths inside the console, never another origin.
function safeNext(n) {
  if (!n || !n.startsWith('/console') || n.startsWith('//')) return '/';
  const p = n.slice('/console'.length) || '/';
  return p.startsWith('/login') ? '/' : p;
}
