// pages/iam_policies.js: the policies attached to users and roles, and a JSON editor that
// validates as you type: JSON syntax, then the shape berth accepts (Version, Statement,
// Effect, Action, Resource). The server validates again on PUT and its sentence is shown.

import * as api from '../api.js';
import {h, fill, empty, failure, table, field, busy, actionButton, confirmDialog, fmtTime} from '../ui.js';

const TEMPLATE = {
  Version: '2012-10-17',
  Statement: [{Sid: 'PushWeb', Effect: 'Allow', Action: ['registry:Pull', 'registry:Push'], Resource: 'repository/web/*'}],
};

export async function policiesSection(ctx, el) {
  let list;
  try {
    list = (await api.get('/api/v1/iam/policies')).policies;
  } catch (e) {
    if (ctx.alive()) fill(el, failure(e));
    return;
  }
  const perms = await api.permissions(list.map((p) => ['iam:DeletePolicy', `${p.kind}/${p.principal}`]));
  if (!ctx.alive()) return;
  const reload = () => policiesSection(ctx, el);
  const editor = policyEditor(reload);
  fill(el, list.length ? table(['Attached to', 'Policy', 'Updated', ''], list.map((p, i) => h('tr', {dataset: {test: 'policy-row', name: p.name}},
    h('td', null, `${p.kind}/${p.principal}`),
    h('td', null, h('details', null, h('summary', null, p.name),
      h('pre', {class: 'code'}, JSON.stringify(p.document, null, 2)))),
    h('td', null, fmtTime(p.updated_at)),
    h('td', {class: 'row-actions'},
      h('button', {type: 'button', class: 'small', onclick: () => editor.load(p)}, 'Edit'),
      actionButton('Delete', perms[i], () => confirmDialog({
        title: 'Delete policy',
        body: `Delete policy ${p.name} of ${p.kind} ${p.principal}? What it allowed is denied from now on.`,
        confirmLabel: 'Delete policy', danger: true,
        action: async () => {
          await api.del(`/api/v1/iam/policies/${p.kind}/${encodeURIComponent(p.principal)}/${encodeURIComponent(p.name)}`);
          reload();
        },
      }), {class: 'small danger', dataset: {test: 'policy-delete'}})))), 'policies')
    : empty('No policies yet.'), editor.el);
}

// Returns a list of problems with a policy document ([] when it is well-formed).
export function checkPolicy(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return ['JSON: ' + e.message];
  }
  const errs = [];
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return ['the policy must be a JSON object'];
  if (doc.Version !== undefined && typeof doc.Version !== 'string') errs.push('Version: must be a string such as "2012-10-17"');
  if (doc.Statement === undefined) return errs.concat(['Statement: missing']);
  const stmts = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
  if (!stmts.length) errs.push('Statement: must not be empty');
  const strOrList = (v) => typeof v === 'string' || (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'));
  stmts.forEach((s, i) => {
    const at = `Statement[${i}]`;
    if (!s || typeof s !== 'object' || Array.isArray(s)) { errs.push(`${at}: must be an object`); return; }
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') errs.push(`${at}.Effect: must be "Allow" or "Deny"`);
    if (!strOrList(s.Action)) errs.push(`${at}.Action: must be a string or a list of strings`);
    else [].concat(s.Action).forEach((a) => { if (a !== '*' && !a.includes(':')) errs.push(`${at}.Action: "${a}" is not namespace:Action`); });
    if (!strOrList(s.Resource)) errs.push(`${at}.Resource: must be a string or a list of strings`);
    if (s.Sid !== undefined && typeof s.Sid !== 'string') errs.push(`${at}.Sid: must be a string`);
  });
  return errs;
}

function policyEditor(reload) {
  const kind = h('select', {dataset: {test: 'policy-kind'}}, h('option', {value: 'user'}, 'user'), h('option', {value: 'role'}, 'role'));
  const principal = h('input', {type: 'text', required: true, spellcheck: 'false', placeholder: 'ci', dataset: {test: 'policy-principal'}});
  const name = h('input', {type: 'text', required: true, spellcheck: 'false', placeholder: 'push-web', dataset: {test: 'policy-name'}});
  const doc = h('textarea', {rows: '12', class: 'code', spellcheck: 'false', dataset: {test: 'policy-json'}});
  doc.value = JSON.stringify(TEMPLATE, null, 2);
  const status = h('p', {class: 'validation', 'aria-live': 'polite', dataset: {test: 'policy-validation'}});
  const errSlot = h('div', {class: 'form-error'});
  const save = h('button', {type: 'submit', class: 'primary', dataset: {test: 'policy-save'}}, 'Save policy');

  const check = () => {
    const errs = checkPolicy(doc.value);
    fill(status, errs.length ? errs.join('\n') : 'Valid policy document.');
    status.className = 'validation ' + (errs.length ? 'bad' : 'good');
    doc.setAttribute('aria-invalid', String(errs.length > 0));
    save.disabled = errs.length > 0;
    return errs.length === 0;
  };
  doc.addEventListener('input', check);
  check();

  const form = h('form', {class: 'subform', dataset: {test: 'policy-editor'}},
    h('h3', null, 'Put a policy'),
    h('div', {class: 'inline-fields'}, field('Attach to', kind), field('User or role name', principal), field('Policy name', name)),
    field('Policy document (JSON)', doc),
    status, errSlot,
    h('div', {class: 'form-buttons'}, save));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!check()) return;
    const path = `/api/v1/iam/policies/${kind.value}/${encodeURIComponent(principal.value.trim())}/${encodeURIComponent(name.value.trim())}`;
    const r = await busy(save, errSlot, () => api.put(path, JSON.parse(doc.value)));
    if (r) reload();
  });
  return {
    el: form,
    load: (p) => {
      kind.value = p.kind;
      principal.value = p.principal;
      name.value = p.name;
      doc.value = JSON.stringify(p.document, null, 2);
      check();
      doc.focus();
    },
  };
}
