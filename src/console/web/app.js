// app.js: the console's entry point. It checks the session, draws the frame (top bar and
// left nav) and routes /console/... URLs (History API) to the page modules in pages/.
// A page module's default export is `async render(ctx)`; see makeContext() for ctx.

import * as api from './api.js';
import {h, fill, errorBox} from './ui.js';

const BASE = '/console';

// [pattern, module, nav section]. Patterns match the path after /console; `:x` is one
// segment, `*x` several (repository names have slashes). Pages of names that may hold a dot
// (zones, repositories, users) end in a fixed word: the server answers index.html only for
// paths whose last segment has no dot (the others are files).
const ROUTES = [
  ['/', 'overview', 'overview'],
  ['/login', 'login', null],
  ['/services', 'services', 'services'],
  ['/services/new', 'service_new', 'services'],
  ['/services/:name', 'service', 'services'],
  ['/services/:name/logs', 'logs', 'services'],
  ['/images', 'images', 'images'],
  ['/images/*repo/tags', 'repository', 'images'],
  ['/builds', 'builds', 'builds'],
  ['/builds/:id', 'build', 'builds'],
  ['/dns', 'dns', 'dns'],
  ['/dns/:zone/records', 'zone', 'dns'],
  ['/domains', 'domains', 'domains'],
  ['/iam', 'iam', 'iam'],
  ['/iam/users/:name/keys', 'iam_user', 'iam'],
  ['/audit', 'audit', 'audit'],
];

const NAV = [
  ['overview', 'Overview', '/'],
  ['services', 'Services', '/services'],
  ['images', 'Images', '/images'],
  ['builds', 'Builds', '/builds'],
  ['dns', 'DNS', '/dns'],
  ['domains', 'Domains', '/domains'],
  ['iam', 'IAM', '/iam'],
  ['audit', 'Audit', '/audit'],
];

let session = null;
let cleanups = [];
let generation = 0;
let moved = false;  // set by navigate(): the next page takes the focus
const app = document.getElementById('app');

// ---------- routing ----------

function match(path) {
  const parts = path.split('/').filter(Boolean);
  for (const [pattern, page, nav] of ROUTES) {
    const pp = pattern.split('/').filter(Boolean);
    const params = {};
    let ok = true;
    let j = 0;  // index into parts
    for (let i = 0; i < pp.length && ok; i++) {
      if (pp[i].startsWith('*')) {
        // The rest of the path but the pattern's fixed segments after the wildcard.
        const tail = pp.length - i - 1;
        const end = parts.length - tail;
        if (end <= j) { ok = false; break; }
        params[pp[i].slice(1)] = parts.slice(j, end).map(decodeURIComponent).join('/');
        j = end;
      } else if (j >= parts.length) {
        ok = false;
      } else if (pp[i].startsWith(':')) {
        params[pp[i].slice(1)] = decodeURIComponent(parts[j++]);
      } else if (pp[i] !== parts[j++]) {
        ok = false;
      }
    }
    if (ok && j === parts.length) return {page, nav, params};
  }
  return null;
}

export function url(path) {
  return BASE + (path === '/' ? '/' : path);
}

export function navigate(path, {replace = false} = {}) {
  const full = path.startsWith(BASE) ? path : url(path);
  if (replace) history.replaceState(null, '', full);
  else history.pushState(null, '', full);
  moved = true;
  route();
}

function currentPath() {
  let p = location.pathname;
  if (p.startsWith(BASE)) p = p.slice(BASE.length);
  return p || '/';
}

function goLogin() {
  const here = location.pathname + location.search;
  if (currentPath() === '/login') return;
  session = null;
  navigate('/login?next=' + encodeURIComponent(here), {replace: true});
}

async function route() {
  for (const fn of cleanups) { try { fn(); } catch { /* keep going */ } }
  cleanups = [];
  const gen = ++generation;
  const path = currentPath();
  const m = match(path);

  if (m && m.page === 'login') {
    document.body.classList.add('bare');
    const mod = await import('./pages/login.js');
    if (gen !== generation) return;
    fill(app);
    await mod.default(makeContext(gen, app, m, null));
    return;
  }
  document.body.classList.remove('bare');

  if (!session) {
    try {
      session = await api.getSession();
    } catch (e) {
      if (e.status === 401) { goLogin(); return; }
      fill(app, h('main', {class: 'main'}, errorBox(e)));
      return;
    }
    if (gen !== generation) return;
  }

  const main = frame(m ? m.nav : null);
  if (!m) {
    fill(main, h('h1', null, 'Page not found'),
      h('p', null, 'There is no console page at ', h('code', null, location.pathname), '. ',
        h('a', {href: url('/')}, 'Go to the overview'), '.'));
    return;
  }
  try {
    const mod = await import(`./pages/${m.page}.js`);
    if (gen !== generation) return;
    await mod.default(makeContext(gen, main, m, session));
  } catch (e) {
    if (gen !== generation) return;
    if (e && e.status === 401) return;  // already on the way to the login page
    main.append(errorBox(e));
  }
  if (gen === generation) {
    const h1 = main.querySelector('h1');
    document.title = (h1 ? h1.textContent + ' · ' : '') + 'berth';
    // After following a link: start at the top, and let keyboard and screen-reader users
    // continue in the new page (unless the page focused a field itself).
    if (moved) {
      moved = false;
      window.scrollTo(0, 0);
      if (!main.contains(document.activeElement)) main.focus({preventScroll: true});
    }
  }
}

// ctx: what a page gets.
//   root      the <main> element to fill
//   params    route parameters ({name: 'web'})
//   query     URLSearchParams of the URL
//   session   {principal, csrf_token, expires_at}
//   alive()   false once the user went elsewhere (ignore late answers)
//   onCleanup(fn)  run fn when leaving the page (close streams, stop timers)
//   navigate(path), url(path)
function makeContext(gen, root, m, sess) {
  return {
    root,
    params: m.params,
    query: new URLSearchParams(location.search),
    session: sess,
    alive: () => gen === generation,
    onCleanup: (fn) => { if (gen === generation) cleanups.push(fn); else fn(); },
    navigate,
    url,
    setSession: (s) => { session = s; },
  };
}

// ---------- the frame ----------

let frameEls = null;

function frame(active) {
  if (!frameEls || !frameEls.shell.isConnected) {
    const navList = h('ul', {class: 'nav-list'});
    const nav = h('nav', {class: 'sidenav', id: 'sidenav', 'aria-label': 'Main'}, navList);
    const toggle = h('button', {type: 'button', class: 'nav-toggle', 'aria-controls': 'sidenav',
      'aria-expanded': 'false', dataset: {test: 'nav-toggle'}}, 'Menu');
    toggle.addEventListener('click', () => {
      const open = document.body.classList.toggle('nav-open');
      toggle.setAttribute('aria-expanded', String(open));
    });
    const who = h('span', {class: 'principal', dataset: {test: 'principal'}});
    const signOut = h('button', {type: 'button', class: 'small', dataset: {test: 'sign-out'}}, 'Sign out');
    signOut.addEventListener('click', async () => {
      signOut.disabled = true;
      try { await api.signOut(); } catch { /* the cookie may be gone already */ }
      session = null;
      navigate('/login', {replace: true});
    });
    const top = h('header', {class: 'topbar'},
      toggle,
      h('a', {class: 'brand', href: url('/')}, h('span', {class: 'brand-mark', 'aria-hidden': 'true'}, '⚓'), 'berth'),
      h('span', {class: 'spacer'}),
      who, signOut);
    const main = h('main', {class: 'main', id: 'main', tabindex: '-1'});
    const skip = h('a', {class: 'skip', href: '#main'}, 'Skip to content');
    const shell = h('div', {class: 'shell'}, skip, top, h('div', {class: 'body'}, nav, main));
    fill(app, shell);
    frameEls = {shell, navList, main, who};
  }
  fill(frameEls.who, session ? session.principal : '');
  fill(frameEls.navList, NAV.map(([key, label, path]) =>
    h('li', null, h('a', {href: url(path), 'aria-current': key === active ? 'page' : null,
      dataset: {test: 'nav-' + key}}, label))));
  document.body.classList.remove('nav-open');
  const main = h('main', {class: 'main', id: 'main', tabindex: '-1'});
  frameEls.main.replaceWith(main);
  frameEls.main = main;
  return main;
}

// ---------- start ----------

// Links inside the console are handled here (no page reload); others behave normally.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a');
  if (!a || a.target || a.hasAttribute('download')) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith(BASE + '/') && href !== BASE) return;
  e.preventDefault();
  navigate(href);
});

window.addEventListener('popstate', route);
api.setUnauthenticatedHandler(goLogin);
route();
