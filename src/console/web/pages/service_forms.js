// pages/service_forms.js: the service page's two edit forms. Both PATCH the service (a new
// revision is deployed) after a confirmation that lists exactly what changes.
//   scaleForm: min_instances, max_instances, concurrency
//   envForm:   env (plain, shown) and secret_env (write-only: names shown as "set")

import * as api from '../api.js';
import {h, fill, field, confirmDialog, denyReason} from '../ui.js';

export function scaleForm(ctx, name, base, svc, perm) {
  const spec = svc.spec || {};
  const min = h('input', {type: 'number', min: '0', max: '100', value: spec.min_instances ?? 1, dataset: {test: 'scale-min'}});
  const max = h('input', {type: 'number', min: '1', max: '100', value: spec.max_instances ?? 4, dataset: {test: 'scale-max'}});
  const conc = h('input', {type: 'number', min: '1', value: spec.concurrency ?? 100, dataset: {test: 'scale-concurrency'}});
  const save = h('button', {type: 'submit', disabled: !perm.allowed, title: perm.allowed ? null : denyReason(perm),
    dataset: {test: 'scale-save'}}, 'Save scaling');
  const form = h('form', {class: 'subform', dataset: {test: 'scale-form'}},
    h('h3', null, 'Scaling'),
    h('div', {class: 'inline-fields'},
      field('Min instances', min), field('Max instances', max), field('Concurrency', conc)),
    h('small', {class: 'hint'}, 'Instances follow the requests in flight: ceil(in flight / concurrency), between min and max.'),
    perm.allowed ? null : h('small', {class: 'deny-reason'}, denyReason(perm)),
    h('div', {class: 'form-buttons'}, save));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {min_instances: Number(min.value), max_instances: Number(max.value), concurrency: Number(conc.value)};
    await confirmDialog({
      title: 'Change scaling',
      body: `Set service ${name} to min ${body.min_instances}, max ${body.max_instances} instances, ` +
        `concurrency ${body.concurrency}? This deploys a new revision with the same image.`,
      confirmLabel: 'Save and deploy',
      action: () => api.patch(base, body),
    });
  });
  return form;
}

export function envForm(ctx, name, base, svc, perm) {
  const spec = svc.spec || {};
  const plain = Object.entries(spec.env || {});
  const secrets = spec.secret_env || [];
  const rows = h('div', {class: 'env-rows', dataset: {test: 'env-rows'}});
  const entries = [];

  const addRow = (kind, key, value, existing) => {
    const k = h('input', {type: 'text', value: key, spellcheck: 'false', 'aria-label': `${kind} variable name`,
      readonly: existing || null, dataset: {test: 'env-name'}});
    const v = h('input', {type: kind === 'secret' ? 'password' : 'text', value: value, spellcheck: 'false',
      autocomplete: 'off', 'aria-label': `${kind} variable value`,
      placeholder: kind === 'secret' && existing ? 'set (enter a new value to replace)' : '',
      dataset: {test: 'env-value'}});
    const entry = {kind, k, v, existing, key, removed: false};
    const rm = h('button', {type: 'button', class: 'small', 'aria-label': 'Remove variable'}, 'Remove');
    const row = h('div', {class: 'env-row'}, h('span', {class: 'pill'}, kind === 'secret' ? 'secret' : 'env'),
      k, v, kind === 'secret' && existing ? h('span', {class: 'set-mark', dataset: {test: 'secret-set'}}, 'set') : null, rm);
    rm.addEventListener('click', () => {
      entry.removed = !entry.removed;
      row.classList.toggle('removed', entry.removed);
      rm.textContent = entry.removed ? 'Keep' : 'Remove';
    });
    entries.push(entry);
    rows.append(row);
  };
  plain.forEach(([k, v]) => addRow('env', k, v, true));
  secrets.forEach((k) => addRow('secret', k, '', true));
  if (!plain.length && !secrets.length) rows.append(h('p', {class: 'muted'}, 'No variables set.'));

  const addEnv = h('button', {type: 'button', class: 'small', dataset: {test: 'env-add'}}, 'Add variable');
  const addSecret = h('button', {type: 'button', class: 'small', dataset: {test: 'secret-add'}}, 'Add secret');
  addEnv.addEventListener('click', () => addRow('env', '', '', false));
  addSecret.addEventListener('click', () => addRow('secret', '', '', false));
  const save = h('button', {type: 'submit', disabled: !perm.allowed, title: perm.allowed ? null : denyReason(perm),
    dataset: {test: 'env-save'}}, 'Save environment');
  const errSlot = h('div', {class: 'form-error'});
  const form = h('form', {class: 'subform', dataset: {test: 'env-form'}},
    h('h3', null, 'Environment'),
    h('small', {class: 'hint'}, 'Secret values are write-only: berth stores them encrypted and shows only their names.'),
    rows,
    h('div', {class: 'form-buttons'}, addEnv, addSecret),
    errSlot,
    perm.allowed ? null : h('small', {class: 'deny-reason'}, denyReason(perm)),
    h('div', {class: 'form-buttons'}, save));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const env = {};
    const secret = {};
    const changes = [];
    for (const en of entries) {
      const key = en.k.value.trim();
      const target = en.kind === 'secret' ? secret : env;
      if (en.removed) {
        if (en.existing) { target[en.key] = null; changes.push(`remove ${en.key}`); }
        continue;
      }
      if (!key) continue;
      if (en.kind === 'env') {
        const old = (spec.env || {})[key];
        if (!en.existing || old !== en.v.value) { env[key] = en.v.value; changes.push(`set ${key}`); }
      } else if (en.v.value !== '') {
        secret[key] = en.v.value;
        changes.push(`set secret ${key}`);
      }
    }
    if (!changes.length) {
      fill(errSlot, h('p', {class: 'muted'}, 'Nothing changed.'));
      return;
    }
    fill(errSlot);
    const body = {};
    if (Object.keys(env).length) body.env = env;
    if (Object.keys(secret).length) body.secret_env = secret;
    const ok = await confirmDialog({
      title: 'Change environment',
      body: `Change the environment of service ${name} (${changes.join(', ')})? This deploys a new revision with the same image.`,
      confirmLabel: 'Save and deploy',
      action: () => api.patch(base, body),
    });
    if (ok) {
      for (const en of entries) if (en.kind === 'secret') en.v.value = '';
      fill(errSlot, h('p', {class: 'ok', dataset: {test: 'env-saved'}}, 'Saved: a new revision is being deployed.'));
    }
  });
  return form;
}
