// pages/services.js: the list of services.

import * as api from '../api.js';
import {h, fill, badge, loading, empty, failure, table, ago, shortDigest} from '../ui.js';

export default async function render(ctx) {
  const body = h('div', null, loading('services'));
  const perms = await api.permMap({create: ['service:CreateService', 'service/*']});
  const create = perms.create.allowed
    ? h('a', {class: 'button primary', href: ctx.url('/services/new'), dataset: {test: 'new-service'}}, 'Create service')
    : h('span', {class: 'denied-action'}, h('button', {type: 'button', disabled: true}, 'Create service'),
      h('small', {class: 'deny-reason'}, perms.create.reason));
  fill(ctx.root, h('div', {class: 'page-head'}, h('h1', null, 'Services'), create), h('section', {class: 'card'}, body));
  try {
    const list = (await api.get('/api/v1/services')).services;
    if (!ctx.alive()) return;
    if (!list.length) {
      fill(body, empty('No services yet — create one.',
        h('a', {class: 'button primary', href: ctx.url('/services/new')}, 'Create a service')));
      return;
    }
    fill(body, table(['Name', 'Status', 'Instances', 'Revision', 'Image', 'URL', 'Created'],
      list.map((s) => h('tr', {dataset: {test: 'service-row', name: s.name}},
        h('td', null, h('a', {href: ctx.url('/services/' + encodeURIComponent(s.name))}, s.name)),
        h('td', null, badge(s.status, 'service-status')),
        h('td', null, String((s.instances || []).length)),
        h('td', null, s.revision ? `r${s.revision} ` : '—', s.digest ? h('code', {class: 'muted'}, shortDigest(s.digest)) : null),
        h('td', null, h('code', null, s.image)),
        h('td', null, s.url ? h('a', {href: s.url, rel: 'noopener'}, s.url) : '—'),
        h('td', null, ago(s.created_at)))), 'services'));
  } catch (e) {
    if (ctx.alive()) fill(body, failure(e));
  }
}
