// pages/dns.js: hosted zones: list, create, delete (confirmed).

import * as api from '../api.js';
import {h, fill, loading, empty, failure, table, field, busy, actionButton, confirmDialog,
  denyReason} from '../ui.js';

export default async function render(ctx) {
  const body = h('div', null, loading('zones'));
  const formSlot = h('div');
  fill(ctx.root, h('div', {class: 'page-head'}, h('h1', null, 'DNS')),
    h('section', {class: 'card'}, h('h2', null, 'Hosted zones'), body), formSlot);

  const load = async () => {
    let zones;
    try {
      zones = (await api.get('/api/v1/dns/zones')).zones;
    } catch (e) {
      if (ctx.alive()) { fill(body, failure(e)); fill(formSlot); }
      return false;
    }
    const perms = await api.permissions(zones.map((z) => ['dns:DeleteZone', 'zone/' + z.name]));
    if (!ctx.alive()) return false;
    fill(body, zones.length ? table(['Zone', 'Serial', 'Record sets', 'Name servers', ''], zones.map((z, i) =>
      h('tr', {dataset: {test: 'zone-row', name: z.name}},
        h('td', null, h('a', {href: ctx.url('/dns/' + encodeURIComponent(z.name) + '/records')}, z.name)),
        h('td', null, String(z.serial)),
        h('td', null, String(z.record_set_count)),
        h('td', null, (z.nameservers || []).join(', ') || '—'),
        h('td', {class: 'row-actions'}, actionButton('Delete', perms[i], () => confirmDialog({
          title: 'Delete zone',
          body: `Delete zone ${z.name} and its ${z.record_set_count} record sets? berth stops answering for it.`,
          confirmLabel: 'Delete ' + z.name, danger: true,
          action: async () => { await api.del('/api/v1/dns/zones/' + encodeURIComponent(z.name)); load(); },
        }), {class: 'small danger', dataset: {test: 'zone-delete'}})))), 'zones')
      : empty('No zones yet — create one for a domain you own, then set its name servers at your registrar.'));
    return true;
  };

  if (await load()) {
    const [perm] = await api.permissions([['dns:CreateZone', 'zone/*']]);
    if (!ctx.alive()) return;
    const name = h('input', {type: 'text', required: true, placeholder: 'example.com', spellcheck: 'false', dataset: {test: 'zone-name'}});
    const errSlot = h('div', {class: 'form-error'});
    const result = h('div', {'aria-live': 'polite'});
    const submit = h('button', {type: 'submit', class: 'primary', disabled: !perm.allowed,
      title: perm.allowed ? null : denyReason(perm), dataset: {test: 'zone-create'}}, 'Create zone');
    const form = h('form', {class: 'card form'}, h('h2', null, 'New zone'),
      h('div', {class: 'inline-fields'}, field('Domain', name)), errSlot,
      perm.allowed ? null : h('small', {class: 'deny-reason'}, denyReason(perm)),
      h('div', {class: 'form-buttons'}, submit), result);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const z = await busy(submit, errSlot, () => api.post('/api/v1/dns/zones', {name: name.value.trim()}));
      if (!z) return;
      name.value = '';
      const ns = z.nameservers || [];
      fill(result, h('p', {class: 'ok'}, `Created ${z.name || 'the zone'}.`,
        ns.length ? ` Set these name servers at your registrar: ${ns.join(', ')}.` : ''));
      load();
    });
    fill(formSlot, form);
  }
}
