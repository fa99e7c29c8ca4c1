// pages/images.js: the registry's repositories; create one; delete one (confirmed).

import * as api from '../api.js';
import {h, fill, loading, empty, failure, table, fmtTime, field, busy, actionButton,
  confirmDialog, denyReason} from '../ui.js';

export default async function render(ctx) {
  const body = h('div', null, loading('repositories'));
  const formSlot = h('div');
  fill(ctx.root, h('div', {class: 'page-head'}, h('h1', null, 'Images')), h('section', {class: 'card'},
    h('h2', null, 'Repositories'), body), formSlot);

  const load = async () => {
    let repos;
    try {
      repos = (await api.get('/api/v1/repositories')).repositories;
    } catch (e) {
      if (ctx.alive()) fill(body, failure(e));
      return;
    }
    const perms = await api.permissions(repos.map((r) => ['registry:DeleteRepository', 'repository/' + r.name]));
    if (!ctx.alive()) return;
    if (!repos.length) {
      fill(body, empty('No repositories yet — create one, then docker push to it.'));
      return;
    }
    const visibility = repos.map(() => h('span', {class: 'muted'}, '…'));
    fill(body, table(['Repository', 'Tags', 'Visibility', 'Created', ''], repos.map((r, i) => h('tr', {dataset: {test: 'repo-row', name: r.name}},
      h('td', null, h('a', {href: ctx.url('/images/' + api.enc(r.name) + '/tags')}, r.name)),
      h('td', null, r.immutable_tags
        ? 'immutable' + ((r.mutable_tags || []).length ? ` (except ${r.mutable_tags.join(', ')})` : '')
        : 'mutable'),
      h('td', null, visibility[i]),
      h('td', null, fmtTime(r.created_at)),
      h('td', {class: 'row-actions'}, actionButton('Delete', perms[i], () => confirmDialog({
        title: 'Delete repository',
        body: `Delete repository ${r.name} with all its tags and manifests? Its blobs are removed at the next gc.`,
        confirmLabel: 'Delete ' + r.name, danger: true,
        action: async () => { await api.del('/api/v1/repositories/' + api.enc(r.name)); load(); },
      }), {class: 'small danger', dataset: {test: 'repo-delete'}})))), 'repositories'));
    // Public or private: from each repository's resource policy (best effort, the first 100).
    repos.slice(0, 100).forEach((r, i) => {
      api.get(`/api/v1/repositories/${api.enc(r.name)}/policy`)
        .then((p) => { visibility[i].className = ''; fill(visibility[i], isPublic(p.document) ? 'public' : 'private'); })
        .catch(() => fill(visibility[i], '—'));
    });
  };

  const [perm] = await api.permissions([['registry:CreateRepository', 'repository/*']]);
  fill(formSlot, createForm(perm, load));
  await load();
}

// A repository is public when its policy lets everyone ("*") pull.
export function isPublic(doc) {
  const stmts = (doc && doc.Statement) ? [].concat(doc.Statement) : [];
  return stmts.some((s) => s.Effect === 'Allow' && [].concat(s.Principal || []).includes('*'));
}

function createForm(perm, reload) {
  const name = h('input', {type: 'text', required: true, placeholder: 'web/app', spellcheck: 'false', dataset: {test: 'repo-name'}});
  const immutable = h('input', {type: 'checkbox', id: 'repo-immutable'});
  const mutable = h('input', {type: 'text', placeholder: 'latest', spellcheck: 'false'});
  const pub = h('input', {type: 'checkbox', id: 'repo-public'});
  const errSlot = h('div', {class: 'form-error'});
  const submit = h('button', {type: 'submit', class: 'primary', disabled: !perm.allowed,
    title: perm.allowed ? null : denyReason(perm), dataset: {test: 'repo-create'}}, 'Create repository');
  const form = h('form', {class: 'card form inline-form'},
    h('h2', null, 'New repository'),
    h('div', {class: 'inline-fields'},
      field('Name', name),
      h('div', {class: 'field checkbox'}, immutable, h('label', {for: 'repo-immutable'}, 'Immutable tags')),
      field('Tags that stay mutable (comma-separated)', mutable),
      h('div', {class: 'field checkbox'}, pub, h('label', {for: 'repo-public'}, 'Public (anyone may pull)'))),
    errSlot,
    perm.allowed ? null : h('small', {class: 'deny-reason'}, denyReason(perm)),
    h('div', {class: 'form-buttons'}, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {name: name.value.trim(), immutable_tags: immutable.checked, public: pub.checked};
    const m = mutable.value.split(',').map((x) => x.trim()).filter(Boolean);
    if (m.length) body.mutable_tags = m;
    const r = await busy(submit, errSlot, () => api.post('/api/v1/repositories', body));
    if (r) { form.reset(); reload(); }
  });
  return form;
}
