// pages/overview.js: services at a glance (status, revision, URL, requests/s and p99
// sparklines, last deployment), recent builds and recent denials. Refreshed every 15 s.

import * as api from '../api.js';
import {h, fill, badge, loading, empty, failure, section, table, sparkline, ago, fmtMs,
  firstLine} from '../ui.js';

export default async function render(ctx) {
  const svcBody = h('div', null, loading('services'));
  const buildBody = h('div', null, loading('builds'));
  const denyBody = h('div', null, loading('denials'));
  const [perm] = await api.permissions([['service:CreateService', 'service/*']]);
  if (!ctx.alive()) return;
  fill(ctx.root,
    h('div', {class: 'page-head'}, h('h1', null, 'Overview'),
      perm.allowed ? h('a', {class: 'button primary', href: ctx.url('/services/new'), dataset: {test: 'new-service'}}, 'Create service')
        : null),
    section('Services', svcBody),
    h('div', {class: 'grid-2'},
      section('Recent builds', buildBody),
      section('Recent denials', denyBody)));

  const refresh = () => Promise.all([services(ctx, svcBody), builds(ctx, buildBody), denials(ctx, denyBody)]);
  await refresh();
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, 15000);
  ctx.onCleanup(() => clearInterval(timer));
}

async function services(ctx, body) {
  let list;
  try {
    list = (await api.get('/api/v1/services')).services;
  } catch (e) {
    if (ctx.alive()) fill(body, failure(e));
    return;
  }
  if (!list.length) {
    fill(body, empty('No services yet — create one from an image you pushed.',
      h('a', {class: 'button primary', href: ctx.url('/services/new')}, 'Create a service')));
    return;
  }
  // Metrics and the last deployment of each service, side by side.
  const extra = await Promise.all(list.map(async (svc) => {
    const [m, d] = await Promise.all([
      api.get(`/api/v1/services/${api.enc(svc.name)}/metrics`).catch(() => null),
      api.get(`/api/v1/services/${api.enc(svc.name)}/deployments?limit=1`).catch(() => null),
    ]);
    return {metrics: m, last: d && d.deployments ? d.deployments[0] : null};
  }));
  if (!ctx.alive()) return;
  const rows = list.map((svc, i) => {
    const pts = (extra[i].metrics && extra[i].metrics.points) || [];
    const lastPt = pts[pts.length - 1];
    const last = extra[i].last;
    return h('tr', {dataset: {test: 'service-row', name: svc.name}},
      h('td', null, h('a', {href: ctx.url('/services/' + encodeURIComponent(svc.name))}, svc.name)),
      h('td', null, badge(svc.status, 'service-status')),
      h('td', null, svc.revision ? 'r' + svc.revision : '—'),
      h('td', null, svc.url ? h('a', {href: svc.url, rel: 'noopener'}, svc.url) : '—'),
      h('td', {class: 'spark-cell'}, sparkline(pts.map((p) => p.rps), {label: 'requests per second'}),
        h('small', null, lastPt ? lastPt.rps.toFixed(1) + '/s' : 'No traffic yet')),
      h('td', {class: 'spark-cell'}, sparkline(pts.map((p) => p.p99_ms), {label: 'p99 latency'}),
        h('small', null, lastPt ? fmtMs(lastPt.p99_ms) : '—')),
      h('td', null, last ? h('span', null, badge(last.status, 'deployment-status'), ' ',
        h('span', {class: 'muted', title: last.reason || ''}, last.trigger + ', ' + ago(last.created_at)),
        last.status === 'FAILED' ? h('div', {class: 'reason'}, firstLine(last.reason)) : null) : '—'));
  });
  fill(body, table(['Service', 'Status', 'Revision', 'URL', 'Requests/s (1 h)', 'p99 (1 h)', 'Last deployment'],
    rows, 'services'));
}

async function builds(ctx, body) {
  try {
    const list = (await api.get('/api/v1/builds?limit=5')).builds;
    if (!ctx.alive()) return;
    if (!list.length) {
      fill(body, empty('No builds yet.', h('a', {href: ctx.url('/builds')}, 'Set up a build project')));
      return;
    }
    fill(body, h('ul', {class: 'plain-list'}, list.map((b) => h('li', null,
      badge(b.status, 'build-status'), ' ',
      h('a', {href: ctx.url('/builds/' + b.id)}, `#${b.id} ${b.project}`), ' ',
      h('span', {class: 'muted'}, (b.commit ? b.commit.slice(0, 7) + ' · ' : '') + ago(b.created_at))))));
  } catch (e) {
    if (ctx.alive()) fill(body, failure(e));
  }
}

async function denials(ctx, body) {
  try {
    const since = Math.floor(Date.now() / 1000) - 86400;
    const events = (await api.get(`/api/v1/audit?since=${since}&limit=1000`)).events
      .filter((e) => e.decision === 'Deny')
      .sort((a, b) => b.time - a.time)
      .slice(0, 8);
    if (!ctx.alive()) return;
    if (!events.length) {
      fill(body, empty('No denials in the last 24 hours.'));
      return;
    }
    fill(body, h('ul', {class: 'plain-list'}, events.map((e) => h('li', null,
      h('strong', null, e.principal), ' may not ', h('code', null, e.action), ' on ',
      h('code', null, e.resource), ' ', h('span', {class: 'muted'}, ago(e.time) + ' from ' + e.source)))),
    h('p', null, h('a', {href: ctx.url('/audit')}, 'Open the audit log')));
  } catch (e) {
    if (ctx.alive()) fill(body, failure(e));
  }
}
