// pages/logs.js: a service's logs, live (GET /api/v1/services/NAME/logs?follow=1, server-sent
// `lines` events). Pause stops appending but keeps the stream (lines wait in a buffer);
// the text filter hides lines client-side; the instance filter and "jump to time" reopen
// the stream with &instance= and &since_ms=.

import * as api from '../api.js';
import {h, fill, field, fmtTimeMs, failure} from '../ui.js';

const MAX_LINES = 5000;

export default async function render(ctx) {
  const name = ctx.params.name;
  const base = `/api/v1/services/${api.enc(name)}`;
  let es = null;
  let paused = false;
  let buffered = [];
  let filter = '';
  let instance = ctx.query.get('instance') || '';
  let sinceMs = Number(ctx.query.get('since_ms')) || 0;
  const instancesSeen = new Set();

  const pane = h('div', {class: 'log-pane', role: 'log', 'aria-live': 'off', tabindex: '0',
    'aria-label': `Logs of ${name}`, dataset: {test: 'log-pane'}});
  const status = h('span', {class: 'live', dataset: {test: 'live-state'}}, 'connecting…');
  const count = h('span', {class: 'muted', dataset: {test: 'log-count'}});
  const pauseBtn = h('button', {type: 'button', dataset: {test: 'logs-pause'}, 'aria-pressed': 'false'}, 'Pause');
  const filterIn = h('input', {type: 'search', placeholder: 'text in the line', dataset: {test: 'logs-filter'}});
  const instSel = h('select', {dataset: {test: 'logs-instance'}}, h('option', {value: ''}, 'All instances'));
  const timeIn = h('input', {type: 'datetime-local', step: '1', dataset: {test: 'logs-time'}});
  const jumpBtn = h('button', {type: 'button', dataset: {test: 'logs-jump'}}, 'Jump to time');
  const liveBtn = h('button', {type: 'button', dataset: {test: 'logs-latest'}}, 'Latest');
  const clearBtn = h('button', {type: 'button', class: 'small'}, 'Clear');
  const errSlot = h('div');

  fill(ctx.root,
    h('p', {class: 'crumbs'}, h('a', {href: ctx.url('/services')}, 'Services'), ' / ',
      h('a', {href: ctx.url('/services/' + encodeURIComponent(name))}, name), ' / logs'),
    h('div', {class: 'page-head'}, h('h1', null, `Logs of ${name}`), status, h('span', {class: 'spacer'}), count),
    h('div', {class: 'card toolbar'},
      pauseBtn, field('Filter', filterIn), field('Instance', instSel),
      field('From (UTC)', timeIn), jumpBtn, liveBtn, clearBtn),
    errSlot,
    pane);

  const addInstance = (id) => {
    if (!id || instancesSeen.has(id)) return;
    instancesSeen.add(id);
    instSel.append(h('option', {value: id}, id));
    instSel.value = instance;
  };
  try {
    const svc = await api.get(base);
    (svc.instances || []).forEach((i) => addInstance(i.id));
  } catch { /* the stream reports problems */ }
  if (!ctx.alive()) return;  // the user went elsewhere meanwhile: leave that page's address be
  if (instance) addInstance(instance);

  const matches = (el) => !filter || el.dataset.text.toLowerCase().includes(filter);
  const updateCount = () => {
    fill(count, `${pane.childElementCount} lines` + (paused && buffered.length ? ` · ${buffered.length} new while paused` : ''));
  };
  const lineEl = (l) => {
    const el = h('div', {class: 'log-line log-' + l.stream, dataset: {test: 'log-line', text: l.text}},
      h('time', {class: 'log-time'}, fmtTimeMs(l.time_ms)),
      h('span', {class: 'log-inst'}, l.instance),
      h('span', {class: 'log-text'}, l.text));
    if (!matches(el)) el.hidden = true;
    return el;
  };
  const appendLines = (lines) => {
    const atBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 40;
    const frag = document.createDocumentFragment();
    for (const l of lines) { frag.append(lineEl(l)); addInstance(l.instance); }
    pane.append(frag);
    while (pane.childElementCount > MAX_LINES) pane.firstElementChild.remove();
    if (atBottom) pane.scrollTop = pane.scrollHeight;
    updateCount();
  };

  const open = () => {
    if (es) es.close();
    pane.replaceChildren();
    buffered = [];
    updateCount();
    const url = `${base}/logs` + api.qs({follow: 1, instance, since_ms: sinceMs || ''});
    let dropped = false;
    es = api.stream(url, {
      lines: (d) => {
        if (paused) {
          // Paused on a noisy service: keep the newest MAX_LINES, as the pane would.
          buffered.push(...d.lines);
          if (buffered.length > MAX_LINES) buffered.splice(0, buffered.length - MAX_LINES);
          updateCount();
        } else {
          appendLines(d.lines);
        }
      },
    }, {onState: (st) => {
      // After a reconnect the server sends its recent lines again: start over with them.
      if (st === 'live' && dropped) { pane.replaceChildren(); buffered = []; }
      dropped = st !== 'live';
      // The stream was refused: say why (412 services unavailable, 404, 403) in the pane.
      if (st === 'closed') api.get(`${base}/logs?limit=1`).catch((e) => fill(errSlot, failure(e)));
      if (st === 'live') fill(errSlot);
      fill(status, st === 'live' ? (paused ? '❚❚ paused' : '● following') : st === 'closed' ? 'disconnected' : 'reconnecting…');
      status.dataset.state = st;
    }});
    const q = api.qs({instance, since_ms: sinceMs || ''});
    history.replaceState(null, '', ctx.url(`/services/${encodeURIComponent(name)}/logs`) + q);
  };

  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.textContent = paused ? 'Follow' : 'Pause';
    pauseBtn.setAttribute('aria-pressed', String(paused));
    fill(status, paused ? '❚❚ paused' : '● following');
    if (!paused && buffered.length) { const b = buffered; buffered = []; appendLines(b); }
    updateCount();
  });
  filterIn.addEventListener('input', () => {
    filter = filterIn.value.toLowerCase();
    for (const el of pane.children) el.hidden = !matches(el);
  });
  instSel.addEventListener('change', () => { instance = instSel.value; open(); });
  jumpBtn.addEventListener('click', () => {
    if (!timeIn.value) return;
    sinceMs = Date.parse(timeIn.value + 'Z') || 0;
    open();
  });
  liveBtn.addEventListener('click', () => { sinceMs = 0; timeIn.value = ''; open(); });
  clearBtn.addEventListener('click', () => { pane.replaceChildren(); updateCount(); });
  if (sinceMs) timeIn.value = new Date(sinceMs).toISOString().slice(0, 19);

  open();
  ctx.onCleanup(() => { if (es) es.close(); });
}
