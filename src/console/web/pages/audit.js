// pages/audit.js: the audit log (every change and every denial). Principal, time range and
// limit are asked of the server; the action text and the decision filter the answer here.
// The filters live in the URL (?principal=&since=&action=&decision=), so a view is bookmarkable.

import * as api from '../api.js';
import {h, fill, loading, empty, failure, table, field, fmtTime, badge} from '../ui.js';

const RANGES = [['3600', 'Last hour'], ['86400', 'Last 24 hours'], ['604800', 'Last 7 days'], ['2592000', 'Last 30 days'], ['0', 'All time']];

export default async function render(ctx) {
  const q = ctx.query;
  const principal = h('input', {type: 'text', spellcheck: 'false', placeholder: 'user/ci', value: q.get('principal') || '',
    dataset: {test: 'audit-principal'}});
  const action = h('input', {type: 'search', spellcheck: 'false', placeholder: 'service:Deploy', value: q.get('action') || '',
    dataset: {test: 'audit-action'}});
  const range = h('select', {dataset: {test: 'audit-range'}}, RANGES.map(([v, l]) => h('option', {value: v}, l)));
  range.value = q.get('since') || '86400';
  const decision = h('select', {dataset: {test: 'audit-decision'}},
    h('option', {value: ''}, 'Allowed and denied'), h('option', {value: 'Deny'}, 'Denied only'), h('option', {value: 'Allow'}, 'Allowed only'));
  decision.value = q.get('decision') || '';
  const limit = h('input', {type: 'number', min: '1', max: '10000', value: q.get('limit') || '500'});
  const apply = h('button', {type: 'submit', class: 'primary', dataset: {test: 'audit-apply'}}, 'Show');
  const body = h('div', null, loading('audit events'));
  const form = h('form', {class: 'card toolbar'},
    field('Principal', principal), field('Action contains', action), field('Time', range), field('Decision', decision),
    field('At most', limit), apply);
  fill(ctx.root, h('div', {class: 'page-head'}, h('h1', null, 'Audit')), form, h('section', {class: 'card'}, body));

  let events = [];
  const show = () => {
    const a = action.value.trim().toLowerCase();
    const list = events.filter((e) => (!a || e.action.toLowerCase().includes(a) || e.resource.toLowerCase().includes(a))
      && (!decision.value || e.decision === decision.value));
    fill(body, list.length ? [h('p', {class: 'muted'}, `${list.length} of ${events.length} events`),
      table(['Time (UTC)', 'Principal', 'Action', 'Resource', 'Decision', 'Source'], list.map((e) =>
        h('tr', {class: e.decision === 'Deny' ? 'row-deny' : null, dataset: {test: 'audit-row'}},
          h('td', {class: 'nowrap'}, fmtTime(e.time)),
          h('td', null, h('a', {href: ctx.url('/audit') + api.qs({principal: e.principal, since: range.value})}, e.principal)),
          h('td', null, h('code', null, e.action)),
          h('td', null, h('code', null, e.resource)),
          h('td', null, badge(e.decision, 'audit-decision')),
          h('td', null, e.source))), 'audit')]
      : empty('No audit events match.'));
  };
  const load = async () => {
    const secs = Number(range.value);
    const params = {principal: principal.value.trim(), limit: limit.value,
      since: secs ? Math.floor(Date.now() / 1000) - secs : ''};
    history.replaceState(null, '', ctx.url('/audit') + api.qs({principal: params.principal, since: range.value,
      action: action.value.trim(), decision: decision.value}));
    fill(body, loading('audit events'));
    try {
      events = (await api.get('/api/v1/audit' + api.qs(params))).events.sort((x, y) => y.time - x.time);
    } catch (e) {
      if (ctx.alive()) fill(body, failure(e));
      return;
    }
    if (ctx.alive()) show();
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  action.addEventListener('input', show);
  decision.addEventListener('change', show);
  await load();
}
