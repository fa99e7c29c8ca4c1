// pages/iam_user.js: one user's access keys: create (the secret is shown this once, with a
// copy button, and never again: it lives only in this page's memory), deactivate, rotate,
// delete — each confirmed.

import * as api from '../api.js';
import {h, fill, loading, empty, failure, table, busy, actionButton, confirmDialog, copyable,
  fmtTime, badge} from '../ui.js';

export default async function render(ctx) {
  const user = ctx.params.name;
  const base = `/api/v1/iam/users/${encodeURIComponent(user)}/keys`;
  const body = h('div', null, loading('access keys'));
  const secretSlot = h('div', {'aria-live': 'polite'});
  const errSlot = h('div', {class: 'form-error'});
  const policiesEl = h('div', null, loading('policies'));
  const perms = await api.permMap({
    create: ['iam:CreateAccessKey', 'user/' + user], update: ['iam:UpdateAccessKey', 'user/' + user],
    remove: ['iam:DeleteAccessKey', 'user/' + user],
  });
  if (!ctx.alive()) return;

  const showSecret = (k, what) => fill(secretSlot, h('div', {class: 'secret-once', dataset: {test: 'secret-once'}},
    h('p', null, h('strong', null, what), ' Copy the secret now: it is shown this once and berth keeps only its hash.'),
    h('dl', {class: 'facts'},
      h('dt', null, 'Access key ID'), h('dd', null, copyable(k.access_key_id, 'key-id-value')),
      h('dt', null, 'Secret access key'), h('dd', null, copyable(k.secret_access_key, 'secret-value')))));

  const createBtn = actionButton('Create access key', perms.create, async (e) => {
    const k = await busy(e.target, errSlot, () => api.post(base, {}));
    if (k && ctx.alive()) { showSecret(k, `Created key ${k.access_key_id} for ${user}.`); load(); }
  }, {class: 'primary', dataset: {test: 'key-create'}});

  fill(ctx.root,
    h('p', {class: 'crumbs'}, h('a', {href: ctx.url('/iam')}, 'IAM'), ' / users / ', user),
    h('div', {class: 'page-head'}, h('h1', null, `User ${user}`), h('span', {class: 'spacer'}), createBtn),
    errSlot, secretSlot,
    h('section', {class: 'card'}, h('h2', null, 'Access keys'), body),
    h('section', {class: 'card'}, h('h2', null, 'Policies'), policiesEl,
      h('p', null, h('a', {href: ctx.url('/iam')}, 'Attach or edit policies on the IAM page'))));

  api.get('/api/v1/iam/policies').then((r) => {
    const mine = r.policies.filter((p) => p.kind === 'user' && p.principal === user);
    fill(policiesEl, mine.length ? mine.map((p) => h('details', {class: 'policy'}, h('summary', null, p.name),
      h('pre', {class: 'code'}, JSON.stringify(p.document, null, 2))))
      : h('p', {class: 'muted'}, `No policy: ${user} may do nothing (default deny).`));
  }).catch((e) => fill(policiesEl, failure(e)));

  async function load() {
    let keys;
    try {
      keys = (await api.get(base)).keys;
    } catch (e) {
      if (ctx.alive()) fill(body, failure(e));
      return;
    }
    if (!ctx.alive()) return;
    fill(body, keys.length ? table(['Access key ID', 'State', 'Created', ''], keys.map((k) => {
      const id = encodeURIComponent(k.access_key_id);
      return h('tr', {dataset: {test: 'key-row', id: k.access_key_id}},
        h('td', null, h('code', null, k.access_key_id)),
        h('td', null, badge(k.active ? 'active' : 'inactive', 'key-state')),
        h('td', null, fmtTime(k.created_at)),
        h('td', {class: 'row-actions'},
          k.active ? actionButton('Rotate', perms.create.allowed ? perms.update : perms.create, () => confirmDialog({
            title: 'Rotate access key',
            body: `Rotate key ${k.access_key_id} of ${user}? A new key is created (its secret shown once) and ${k.access_key_id} is deactivated at once.`,
            confirmLabel: 'Rotate',
            action: async () => {
              const n = await api.post(`/api/v1/iam/keys/${id}/rotate`);
              showSecret(n, `Rotated: new key ${n.access_key_id}; ${k.access_key_id} is deactivated.`);
              load();
            },
          }), {class: 'small', dataset: {test: 'key-rotate'}}) : null,
          k.active ? actionButton('Deactivate', perms.update, () => confirmDialog({
            title: 'Deactivate access key',
            body: `Deactivate key ${k.access_key_id} of ${user}? It stops working at once, for new tokens and requests.`,
            confirmLabel: 'Deactivate', danger: true,
            action: async () => { await api.post(`/api/v1/iam/keys/${id}/deactivate`); load(); },
          }), {class: 'small', dataset: {test: 'key-deactivate'}}) : null,
          actionButton('Delete', perms.remove, () => confirmDialog({
            title: 'Delete access key',
            body: `Delete key ${k.access_key_id} of ${user}? It stops working at once and cannot be restored.`,
            confirmLabel: 'Delete key', danger: true,
            action: async () => { await api.del(`/api/v1/iam/keys/${id}`); load(); },
          }), {class: 'small danger', dataset: {test: 'key-delete'}})));
    }), 'keys') : empty(`No access keys — ${user} cannot sign in or use the API yet.`));
  }
  await load();
}
