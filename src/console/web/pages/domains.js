// pages/domains.js: custom domains: status, certificate expiry, last error, the steps of a
// link; link a service to a name; unlink (confirmed). Refreshed every 10 s while any link
// is still in progress.

import * as api from '../api.js';
import {h, fill, loading, empty, failure, table, field, busy, actionButton, confirmDialog,
  denyReason, badge, fmtTime, ago} from '../ui.js';

export default async function render(ctx) {
  const body = h('div', null, loading('domains'));
  const formSlot = h('div');
  fill(ctx.root, h('div', {class: 'page-head'}, h('h1', null, 'Domains')),
    h('section', {class: 'card'}, h('h2', null, 'Linked domains'), body), formSlot);

  let timer = null;
  const load = async () => {
    let list;
    try {
      list = (await api.get('/api/v1/domains')).domains;
    } catch (e) {
      if (ctx.alive()) { fill(body, failure(e)); fill(formSlot); }
      return false;
    }
    const perms = await api.permissions(list.map((d) => ['domain:UnlinkDomain', 'domain/' + d.name]));
    if (!ctx.alive()) return false;
    fill(body, list.length ? table(['Domain', 'Service', 'Status', 'Issuer', 'Certificate expires', 'Last error', ''],
      list.map((d, i) => h('tr', {dataset: {test: 'domain-row', name: d.name}},
        h('td', null, h('strong', null, d.name), steps(d)),
        h('td', null, d.registry ? h('span', {class: 'muted', title: "berthd's own registry listener"}, '(registry)')
          : h('a', {href: ctx.url('/services/' + encodeURIComponent(d.service))}, d.service)),
        h('td', null, badge(d.status, 'domain-status'), required(d)),
        h('td', null, d.issuer || '—'),
        h('td', {title: fmtTime(d.expires_at)}, d.expires_at ? ago(d.expires_at) : '—'),
        h('td', null, d.last_error ? h('span', {class: 'reason'}, d.last_error) : '—'),
        h('td', {class: 'row-actions'}, actionButton('Unlink', perms[i], () => confirmDialog({
          title: 'Unlink domain',
          body: `Unlink ${d.name} from ${d.registry ? 'the registry' : 'service ' + d.service}? Its route, the records link wrote and (when no other name uses it) its certificate are removed.`,
          confirmLabel: 'Unlink ' + d.name, danger: true,
          action: async () => {
            const target = d.registry ? 'registry=true' : 'service=' + encodeURIComponent(d.service);
            await api.del(`/api/v1/domains/${encodeURIComponent(d.name)}?${target}`); load();
          },
        }), {class: 'small danger', dataset: {test: 'domain-unlink'}})))), 'domains')
      : empty('No custom domains yet — link a service to a name in a zone berth hosts.'));
    const busyLinks = list.some((d) => !['ACTIVE', 'FAILED'].includes(d.status));
    if (busyLinks && !timer) timer = setInterval(() => { if (!document.hidden) load(); }, 10000);
    if (!busyLinks && timer) { clearInterval(timer); timer = null; }
    return true;
  };
  ctx.onCleanup(() => { if (timer) clearInterval(timer); });

  if (await load()) {
    const service = h('input', {type: 'text', required: true, placeholder: 'web', spellcheck: 'false', dataset: {test: 'domain-service'}});
    const name = h('input', {type: 'text', required: true, placeholder: 'example.com', spellcheck: 'false', dataset: {test: 'domain-name'}});
    const www = h('input', {type: 'checkbox', id: 'domain-www'});
    const errSlot = h('div', {class: 'form-error'});
    const submit = h('button', {type: 'submit', class: 'primary', dataset: {test: 'domain-link'}}, 'Link domain');
    const form = h('form', {class: 'card form'}, h('h2', null, 'Link a domain'),
      h('div', {class: 'inline-fields'}, field('Service', service), field('Domain', name),
        h('div', {class: 'field checkbox'}, www, h('label', {for: 'domain-www'}, 'Also www.'))),
      errSlot, h('div', {class: 'form-buttons'}, submit));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = {service: service.value.trim(), name: name.value.trim(), www: www.checked};
      const [perm] = await api.permissions([['domain:LinkDomain', 'domain/' + body.name]]);
      if (!perm.allowed) { fill(errSlot, h('p', {class: 'deny-reason'}, denyReason(perm))); return; }
      const r = await busy(submit, errSlot, () => api.post('/api/v1/domains', body));
      if (r) { form.reset(); load(); }
    });
    fill(formSlot, form);
  }
}

function steps(d) {
  if (!d.steps || !d.steps.length) return null;
  return h('details', {class: 'steps'}, h('summary', null, `${d.steps.length} steps`),
    h('ol', null, d.steps.map((s) => h('li', null, `${s.step}: ${s.status}`, s.detail ? ` — ${s.detail}` : '',
      h('span', {class: 'muted'}, ' ' + ago(s.at))))));
}

function required(d) {
  const rr = d.required_records;
  if (!rr || (Array.isArray(rr) && !rr.length)) return null;
  const list = Array.isArray(rr) ? rr : [rr];
  return h('div', {class: 'muted'}, 'Create at your DNS host: ',
    list.map((r) => h('code', {class: 'pre'}, typeof r === 'string' ? r : JSON.stringify(r))));
}
