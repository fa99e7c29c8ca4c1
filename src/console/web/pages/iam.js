// pages/iam.js: users and roles (create, delete), policies (pages/iam_policies.js) and the
// policy simulator. A user's access keys are on pages/iam_user.js.

import * as api from '../api.js';
import {h, fill, loading, empty, failure, table, field, busy, actionButton, confirmDialog,
  denyReason, fmtTime, badge} from '../ui.js';
import {policiesSection} from './iam_policies.js';

export default async function render(ctx) {
  const usersEl = h('div', null, loading('users'));
  const rolesEl = h('div', null, loading('roles'));
  const policiesEl = h('div', null, loading('policies'));
  fill(ctx.root, h('div', {class: 'page-head'}, h('h1', null, 'IAM')),
    h('div', {class: 'grid-2'},
      h('section', {class: 'card', dataset: {test: 'users'}}, h('h2', null, 'Users'), usersEl),
      h('section', {class: 'card', dataset: {test: 'roles'}}, h('h2', null, 'Roles'), rolesEl)),
    h('section', {class: 'card'}, h('h2', null, 'Policies'), policiesEl),
    simulator(ctx));

  const perms = await api.permMap({
    createUser: ['iam:CreateUser', 'user/*'], createRole: ['iam:CreateRole', 'role/*'],
  });
  const reloadPolicies = () => policiesSection(ctx, policiesEl);
  await Promise.all([
    principals(ctx, usersEl, 'user', perms.createUser, reloadPolicies),
    principals(ctx, rolesEl, 'role', perms.createRole, reloadPolicies),
    reloadPolicies(),
  ]);
}

// The users or roles list with its create form. kind: 'user' | 'role'.
async function principals(ctx, el, kind, createPerm, reloadPolicies) {
  const plural = kind + 's';
  let list;
  try {
    list = (await api.get(`/api/v1/iam/${plural}`))[plural];
  } catch (e) {
    if (ctx.alive()) fill(el, failure(e));
    return;
  }
  const kindAction = kind === 'user' ? 'iam:DeleteUser' : 'iam:DeleteRole';
  const perms = await api.permissions(list.map((p) => [kindAction, `${kind}/${p.name}`]));
  if (!ctx.alive()) return;
  const reload = () => principals(ctx, el, kind, createPerm, reloadPolicies);

  const name = h('input', {type: 'text', required: true, spellcheck: 'false', placeholder: kind === 'user' ? 'ci' : 'builder',
    dataset: {test: `${kind}-name`}});
  const errSlot = h('div', {class: 'form-error'});
  const submit = h('button', {type: 'submit', class: 'primary', disabled: !createPerm.allowed,
    title: createPerm.allowed ? null : denyReason(createPerm), dataset: {test: `${kind}-create`}}, `Create ${kind}`);
  const form = h('form', {class: 'inline-form'},
    h('div', {class: 'inline-fields'}, field(`New ${kind} name`, name), h('div', {class: 'field'}, submit)),
    errSlot, createPerm.allowed ? null : h('small', {class: 'deny-reason'}, denyReason(createPerm)));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await busy(submit, errSlot, () => api.post(`/api/v1/iam/${plural}`, {name: name.value.trim()}));
    if (r) reload();
  });

  fill(el, list.length ? table(['Name', 'Created', ''], list.map((p, i) => h('tr', {dataset: {test: `${kind}-row`, name: p.name}},
    h('td', null, kind === 'user'
      ? h('a', {href: ctx.url('/iam/users/' + encodeURIComponent(p.name) + '/keys'), dataset: {test: 'user-link'}}, p.name)
      : p.name),
    h('td', null, fmtTime(p.created_at)),
    h('td', {class: 'row-actions'}, actionButton('Delete', perms[i], () => confirmDialog({
      title: `Delete ${kind}`,
      body: kind === 'user'
        ? `Delete user ${p.name} with its access keys and policies? Its keys stop working at once.`
        : `Delete role ${p.name} and its policies? Services and projects that use it can no longer pull or push with it.`,
      confirmLabel: `Delete ${p.name}`, danger: true,
      action: async () => { await api.del(`/api/v1/iam/${plural}/${encodeURIComponent(p.name)}`); reload(); reloadPolicies(); },
    }), {class: 'small danger', dataset: {test: `${kind}-delete`}})))), plural)
    : empty(`No ${plural} yet.`), form);
}

function simulator(ctx) {
  const principal = h('input', {type: 'text', required: true, placeholder: 'user/ci, role/builder or anonymous',
    spellcheck: 'false', value: ctx.session ? ctx.session.principal : '', dataset: {test: 'sim-principal'}});
  const action = h('input', {type: 'text', required: true, placeholder: 'registry:Push', spellcheck: 'false', dataset: {test: 'sim-action'}});
  const resource = h('input', {type: 'text', required: true, placeholder: 'repository/web/app', spellcheck: 'false', dataset: {test: 'sim-resource'}});
  const out = h('div', {'aria-live': 'polite', dataset: {test: 'sim-result'}});
  const errSlot = h('div', {class: 'form-error'});
  const submit = h('button', {type: 'submit', class: 'primary', dataset: {test: 'sim-run'}}, 'Simulate');
  const form = h('form', {class: 'card form', dataset: {test: 'simulator'}},
    h('h2', null, 'Policy simulator'),
    h('p', {class: 'muted'}, 'Would this principal be allowed this action on this resource? Nothing is changed.'),
    h('div', {class: 'inline-fields'}, field('Principal', principal), field('Action', action), field('Resource', resource),
      h('div', {class: 'field'}, submit)),
    errSlot, out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await busy(submit, errSlot, () => api.post('/api/v1/iam/simulate',
      {principal: principal.value.trim(), action: action.value.trim(), resource: resource.value.trim()}));
    if (!r) return;
    fill(out, h('p', null, badge(r.decision, 'sim-decision'), ' ',
      r.policy ? `by policy ${r.policy}` + (r.sid ? `, statement ${r.sid}` : '') : '',
      r.reason && r.reason !== 'allowed' ? h('span', {class: 'muted'}, ` — ${r.reason}`) : ''));
  });
  return form;
}
