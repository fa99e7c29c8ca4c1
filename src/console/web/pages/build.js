// pages/build.js: one build: status, phases with their durations, Dockerfile steps, and the
// log, live while the build runs (GET /api/v1/builds/ID/logs?follow=1: `log` events, then
// one `end` event, after which we close the stream). Stop is confirmed.

import * as api from '../api.js';
import {h, fill, loading, failure, badge, fmtTime, fmtDuration, fmtSeconds, shortDigest,
  actionButton, confirmDialog, table} from '../ui.js';

const PHASES = ['SOURCE', 'BUILD', 'PUSH'];

export default async function render(ctx) {
  const id = ctx.params.id;
  const base = `/api/v1/builds/${encodeURIComponent(id)}`;
  fill(ctx.root, h('h1', null, `Build #${id}`), loading('build'));
  let build;
  try {
    build = await api.get(base);
  } catch (e) {
    if (ctx.alive()) fill(ctx.root, h('h1', null, `Build #${id}`), failure(e));
    return;
  }
  const [stopPerm] = await api.permissions([['build:StopBuild', 'project/' + build.project]]);
  if (!ctx.alive()) return;

  const statusEl = h('span');
  const factsEl = h('div');
  const phasesEl = h('ol', {class: 'phases', dataset: {test: 'phases'}});
  const stepsEl = h('div');
  const actionsEl = h('div', {class: 'action-row'});
  const logEl = h('pre', {class: 'log-pane build-log', role: 'log', tabindex: '0', dataset: {test: 'build-log'}});
  const logState = h('span', {class: 'live', dataset: {test: 'live-state'}});

  const draw = (b) => {
    build = b;
    fill(statusEl, badge(b.status, 'build-status'));
    fill(factsEl, h('dl', {class: 'facts'},
      h('dt', null, 'Project'), h('dd', null, b.project),
      h('dt', null, 'Commit'), h('dd', null, b.commit ? h('code', null, b.commit) : '—', b.branch ? ` (${b.branch})` : ''),
      h('dt', null, 'Trigger'), h('dd', null, b.trigger || '—'),
      h('dt', null, 'Image'), h('dd', null, b.image ? h('code', null, b.image) : '—',
        b.image_digest ? h('code', {class: 'muted', title: b.image_digest}, ' ' + shortDigest(b.image_digest)) : null),
      h('dt', null, 'Tags'), h('dd', null, (b.tags || []).join(', ') || '—'),
      h('dt', null, 'Created'), h('dd', null, fmtTime(b.created_at)),
      h('dt', null, 'Duration'), h('dd', null, b.started_at ? fmtDuration(b.started_at, b.finished_at) : 'queued'),
      b.reason ? [h('dt', null, 'Reason'), h('dd', null, h('pre', {class: 'reason', dataset: {test: 'build-reason'}}, b.reason))] : null));
    const reached = PHASES.indexOf(b.phase);
    fill(phasesEl, PHASES.map((p, i) => {
      const ms = b.phase_ms ? b.phase_ms[p] : undefined;
      let st = 'pending';
      if (i < reached || (i === reached && ['SUCCEEDED'].includes(b.status))) st = 'done';
      else if (i === reached) st = b.status === 'IN_PROGRESS' ? 'running' : b.status.toLowerCase();
      return h('li', {class: 'phase phase-' + st, dataset: {test: 'phase', phase: p, state: st}},
        h('span', {class: 'phase-name'}, p), h('span', {class: 'muted'}, ms !== undefined ? fmtSeconds(ms / 1000) : st));
    }));
    const steps = b.steps || [];
    fill(stepsEl, steps.length ? table(['Line', 'Step', 'Cached', 'Time'], steps.map((s) => h('tr', null,
      h('td', null, String(s.line)), h('td', null, h('code', null, s.text)),
      h('td', null, s.cached ? 'cached' : ''), h('td', null, fmtSeconds((s.ms || 0) / 1000)))), 'steps')
      : h('p', {class: 'muted'}, 'No Dockerfile steps yet.'));
    const running = b.status === 'QUEUED' || b.status === 'IN_PROGRESS';
    fill(actionsEl, running ? actionButton('Stop build', stopPerm, () => confirmDialog({
      title: 'Stop build', body: `Stop build #${b.id} of ${b.project}? What runs is killed and the build ends STOPPED.`,
      confirmLabel: 'Stop build', danger: true,
      action: async () => draw(await api.post(`${base}/stop`)),
    }), {class: 'danger', dataset: {test: 'stop-build'}}) : null);
  };

  fill(ctx.root,
    h('p', {class: 'crumbs'}, h('a', {href: ctx.url('/builds')}, 'Builds'), ' / #' + id),
    h('div', {class: 'page-head'}, h('h1', null, `Build #${id}`), statusEl, h('span', {class: 'spacer'}), actionsEl),
    h('section', {class: 'card'}, h('h2', null, 'Phases'), phasesEl, factsEl),
    h('section', {class: 'card'}, h('h2', null, 'Dockerfile steps'), stepsEl),
    h('section', {class: 'card'}, h('div', {class: 'section-head'}, h('h2', null, 'Log'), logState), logEl));
  draw(build);

  // The log: streamed while the build runs; the whole text at once when it has ended.
  let dropped = false;
  const es = api.stream(`${base}/logs?follow=1`, {
    log: (d) => {
      const atBottom = logEl.scrollHeight - logEl.scrollTop - logEl.clientHeight < 40;
      logEl.append(document.createTextNode(d.text));
      if (atBottom) logEl.scrollTop = logEl.scrollHeight;
    },
    end: async (d, src) => {
      src.close();
      fill(logState, 'ended: ' + d.status);
      logState.dataset.state = 'ended';
      try { if (ctx.alive()) draw(await api.get(base)); } catch { /* keep what we have */ }
    },
  }, {onState: (st) => {
    // A reconnect streams the log from its start again.
    if (st === 'live' && dropped) logEl.replaceChildren();
    dropped = st !== 'live';
    if (logState.dataset.state !== 'ended') fill(logState, st === 'live' ? '● live' : st);
  }});
  // Status and phases while it runs.
  const timer = setInterval(async () => {
    if (build.status !== 'QUEUED' && build.status !== 'IN_PROGRESS') return;
    try { const b = await api.get(base); if (ctx.alive()) draw(b); } catch { /* next time */ }
  }, 2000);
  ctx.onCleanup(() => { es.close(); clearInterval(timer); });
}
