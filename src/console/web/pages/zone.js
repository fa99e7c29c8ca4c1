// pages/zone.js: one zone's record sets and a change-batch editor. A batch (Route 53's
// ChangeResourceRecordSets JSON) is validated as you type, previewed as a diff against the
// current record sets, and only then applied (all or nothing, by the server).

import * as api from '../api.js';
import {h, fill, loading, empty, failure, table, field, busy, actionButton,
  confirmDialog, denyReason} from '../ui.js';

const TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'SRV', 'CAA', 'NS', 'PTR', 'ALIAS'];

export default async function render(ctx) {
  const zone = ctx.params.zone;
  const base = '/api/v1/dns/zones/' + encodeURIComponent(zone);
  const body = h('div', null, loading('records'));
  const serialEl = h('span', {class: 'pill'});
  const editorSlot = h('div');
  fill(ctx.root,
    h('p', {class: 'crumbs'}, h('a', {href: ctx.url('/dns')}, 'DNS'), ' / ', zone),
    h('div', {class: 'page-head'}, h('h1', null, zone), serialEl),
    h('section', {class: 'card'}, h('h2', null, 'Record sets'), body),
    editorSlot);

  let current = [];
  const [perm] = await api.permissions([['dns:ChangeRecordSets', `zone/${zone}/record/*`]]);
  const editor = batchEditor(zone, () => current, perm, async (batch) => {
    await api.post(base + '/changes', batch);
    await load();
  });

  const load = async () => {
    try {
      const r = await api.get(base + '/records');
      if (!ctx.alive()) return;
      current = r.record_sets || [];
      fill(serialEl, 'serial ' + r.serial);
    } catch (e) {
      if (ctx.alive()) { fill(body, failure(e)); fill(editorSlot); }
      return;
    }
    fill(body, current.length ? table(['Name', 'Type', 'TTL', 'Value', 'Routing', ''], current.map((rs) =>
      h('tr', {dataset: {test: 'record-row', name: rs.Name, type: rs.Type}},
        h('td', null, h('code', null, rs.Name)),
        h('td', null, rs.Type),
        h('td', null, String(rs.TTL)),
        h('td', null, h('code', {class: 'pre'}, valuesOf(rs).join('\n'))),
        h('td', null, routing(rs)),
        h('td', {class: 'row-actions'},
          h('button', {type: 'button', class: 'small', onclick: () => editor.load([{Action: 'UPSERT', ResourceRecordSet: rs}])}, 'Edit'),
          rs.Type === 'SOA' || (rs.Type === 'NS' && rs.Name === zone + '.') ? null
            : actionButton('Delete', perm, () => confirmDialog({
              title: 'Delete record set',
              body: `Delete ${rs.Type} ${rs.Name} (${valuesOf(rs).join(', ')})?`,
              confirmLabel: 'Delete', danger: true,
              action: async () => { await api.post(base + '/changes', {Changes: [{Action: 'DELETE', ResourceRecordSet: rs}]}); await load(); },
            }), {class: 'small danger', dataset: {test: 'record-delete'}})))), 'records')
      : empty('No record sets.'));
  };
  await load();
  if (ctx.alive() && !body.querySelector('[data-test=unavailable],[data-test=error]')) fill(editorSlot, editor.el);
}

function valuesOf(rs) {
  if (rs.AliasTarget) return [rs.AliasTarget.Service ? `service ${rs.AliasTarget.Service}` : rs.AliasTarget.DNSName];
  return (rs.ResourceRecords || []).map((r) => r.Value);
}

function routing(rs) {
  if (!rs.SetIdentifier) return '—';
  const kind = rs.Weight !== undefined ? `weight ${rs.Weight}` : rs.Failover ? rs.Failover.toLowerCase()
    : rs.MultiValueAnswer ? 'multivalue' : '';
  return `${rs.SetIdentifier}: ${kind}` + (rs.HealthCheckId ? ` (check ${rs.HealthCheckId})` : '');
}

function absName(name, zone) {
  let n = String(name || '').trim();
  if (n === '@' || n === '') return zone + '.';
  if (n.endsWith('.')) return n.toLowerCase();
  if (n === zone || n.endsWith('.' + zone)) return n.toLowerCase() + '.';
  return (n + '.' + zone + '.').toLowerCase();
}

function key(rs, zone) {
  return [absName(rs.Name, zone), String(rs.Type).toUpperCase(), rs.SetIdentifier || ''].join('|');
}

function lines(rs, zone) {
  return valuesOf(rs).map((v) => `${absName(rs.Name, zone)}  ${rs.TTL ?? ''}  ${rs.Type}  ${v}`);
}

// Checks the batch's shape; returns a list of problems (empty when it looks right).
function validate(batch) {
  const errs = [];
  if (!batch || typeof batch !== 'object' || !Array.isArray(batch.Changes)) return ['the batch needs a "Changes" list'];
  if (!batch.Changes.length) errs.push('"Changes" is empty');
  batch.Changes.forEach((c, i) => {
    if (!['CREATE', 'UPSERT', 'DELETE'].includes(c && c.Action)) errs.push(`Changes[${i}].Action: must be CREATE, UPSERT or DELETE`);
    const rs = c && c.ResourceRecordSet;
    if (!rs || typeof rs !== 'object') { errs.push(`Changes[${i}].ResourceRecordSet: missing`); return; }
    if (!rs.Name) errs.push(`Changes[${i}].ResourceRecordSet.Name: missing`);
    if (!rs.Type) errs.push(`Changes[${i}].ResourceRecordSet.Type: missing`);
    if (!rs.AliasTarget && !Array.isArray(rs.ResourceRecords)) errs.push(`Changes[${i}].ResourceRecordSet: needs ResourceRecords or AliasTarget`);
  });
  return errs;
}

// The diff of a batch against the current record sets: [{sign: '+'|'-'|'!', text}].
function diff(batch, current, zone) {
  const byKey = new Map(current.map((rs) => [key(rs, zone), rs]));
  const out = [];
  for (const c of batch.Changes) {
    const rs = c.ResourceRecordSet;
    const old = byKey.get(key(rs, zone));
    if (c.Action === 'CREATE') {
      if (old) out.push({sign: '!', text: `${rs.Type} ${absName(rs.Name, zone)} exists already: CREATE will fail`});
      else lines(rs, zone).forEach((t) => out.push({sign: '+', text: t}));
    } else if (c.Action === 'UPSERT') {
      if (old) lines(old, zone).forEach((t) => out.push({sign: '-', text: t}));
      lines(rs, zone).forEach((t) => out.push({sign: '+', text: t}));
    } else if (c.Action === 'DELETE') {
      if (!old) out.push({sign: '!', text: `${rs.Type} ${absName(rs.Name, zone)} does not exist: DELETE will fail`});
      else lines(old, zone).forEach((t) => out.push({sign: '-', text: t}));
    }
    byKey.set(key(rs, zone), c.Action === 'DELETE' ? undefined : rs);
  }
  return out;
}

function batchEditor(zone, getCurrent, perm, apply) {
  // Quick form: builds one change and adds it to the batch.
  const action = h('select', null, ['UPSERT', 'CREATE', 'DELETE'].map((a) => h('option', {value: a}, a)));
  const name = h('input', {type: 'text', placeholder: 'www or @', spellcheck: 'false', dataset: {test: 'record-name'}});
  const type = h('select', {dataset: {test: 'record-type'}}, TYPES.map((t) => h('option', {value: t}, t)));
  const ttl = h('input', {type: 'number', min: '0', value: '300'});
  const values = h('textarea', {rows: '2', spellcheck: 'false', placeholder: 'one value per line (ALIAS: a service name)',
    dataset: {test: 'record-values'}});
  const add = h('button', {type: 'button', dataset: {test: 'batch-add'}}, 'Add to batch');

  const text = h('textarea', {rows: '10', class: 'code', spellcheck: 'false', dataset: {test: 'batch-json'}});
  const status = h('p', {class: 'validation', 'aria-live': 'polite', dataset: {test: 'batch-validation'}});
  const previewBtn = h('button', {type: 'button', dataset: {test: 'batch-preview'}}, 'Preview changes');
  const applyBtn = h('button', {type: 'button', class: 'primary', disabled: true, dataset: {test: 'batch-apply'}}, 'Apply');
  const diffEl = h('pre', {class: 'diff', dataset: {test: 'batch-diff'}, hidden: true});
  const errSlot = h('div', {class: 'form-error'});
  let batch = {Comment: '', Changes: []};

  const setBatch = (b) => { batch = b; text.value = JSON.stringify(b, null, 2); check(); };
  const check = () => {
    applyBtn.disabled = true;
    diffEl.hidden = true;
    let parsed;
    try {
      parsed = JSON.parse(text.value);
    } catch (e) {
      fill(status, 'JSON: ' + e.message);
      status.className = 'validation bad';
      return null;
    }
    const errs = validate(parsed);
    fill(status, errs.length ? errs.join('; ') : `${parsed.Changes.length} change(s), well-formed. Preview them before applying.`);
    status.className = 'validation ' + (errs.length ? 'bad' : 'good');
    return errs.length ? null : parsed;
  };
  text.addEventListener('input', check);

  add.addEventListener('click', () => {
    const vals = values.value.split('\n').map((v) => v.trim()).filter(Boolean);
    const rs = {Name: absName(name.value, zone), Type: type.value};
    if (type.value === 'ALIAS') rs.AliasTarget = {Service: vals[0] || ''};
    else { rs.TTL = Number(ttl.value); rs.ResourceRecords = vals.map((v) => ({Value: v})); }
    const b = check() || {Comment: '', Changes: []};
    b.Changes.push({Action: action.value, ResourceRecordSet: rs});
    setBatch(b);
    name.value = '';
    values.value = '';
  });
  previewBtn.addEventListener('click', () => {
    const b = check();
    if (!b) return;
    const d = diff(b, getCurrent(), zone);
    fill(diffEl, d.length ? d.map((l) => h('span', {class: 'diff-' + (l.sign === '+' ? 'add' : l.sign === '-' ? 'del' : 'warn')},
      `${l.sign} ${l.text}\n`)) : 'No change.');
    diffEl.hidden = false;
    applyBtn.disabled = !perm.allowed;
    applyBtn.textContent = `Apply ${b.Changes.length} change(s) to ${zone}`;
  });
  applyBtn.addEventListener('click', async () => {
    const b = check();
    if (!b) return;
    const ok = await busy(applyBtn, errSlot, async () => { await apply(b); return true; });
    if (ok) { setBatch({Comment: '', Changes: []}); fill(status, 'Applied.'); status.className = 'validation good'; }
  });

  const el = h('section', {class: 'card', dataset: {test: 'batch-editor'}},
    h('h2', null, 'Change batch'),
    h('p', {class: 'muted'}, 'Changes are applied all or nothing. Build them with the form or edit the JSON (Route 53\'s shape); preview the diff, then apply.'),
    h('div', {class: 'inline-fields'}, field('Action', action), field('Name', name), field('Type', type), field('TTL', ttl),
      field('Values', values), h('div', {class: 'field'}, add)),
    field('Change batch (JSON)', text),
    status,
    perm.allowed ? null : h('small', {class: 'deny-reason'}, denyReason(perm)),
    h('div', {class: 'form-buttons'}, previewBtn, applyBtn),
    diffEl, errSlot);
  setBatch(batch);
  return {el, load: (changes) => { setBatch({Comment: '', Changes: changes}); text.focus(); }};
}
