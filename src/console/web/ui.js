// ui.js: the DOM helper h(), formatting, and the small building blocks every page uses
// (error boxes, empty states, confirmation dialogs, permission-aware buttons, SVG charts).
// Every value from the API reaches the page as text: h() only ever creates text nodes.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h('a', {href: '/x', class: 'link', dataset: {test: 'x'}, onclick: fn}, 'text', child, [more])
// Attributes: `class`, `dataset`, `on<event>` (a listener), booleans (set when true, left off
// when false), everything else through setAttribute. Children: strings and numbers become text
// nodes; null, undefined and false are skipped; arrays are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

// The same for SVG elements (charts).
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

function applyAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'value' && 'value' in el && el.namespaceURI !== SVG_NS) {
      el.value = String(v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces an element's children.
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// ---------- formatting ----------

export function fmtTime(unix) {
  if (!unix) return '—';
  const d = new Date(unix * 1000);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function fmtTimeMs(ms) {
  const d = new Date(ms);
  return d.toISOString().slice(11, 23);
}

export function ago(unix) {
  if (!unix) return '—';
  const secs = Math.round(Date.now() / 1000 - unix);
  if (secs < 0) return 'in ' + span(-secs);
  if (secs < 5) return 'just now';
  return span(secs) + ' ago';
}

function span(secs) {
  if (secs < 60) return secs + 's';
  if (secs < 3600) return Math.floor(secs / 60) + 'm';
  if (secs < 86400) return Math.floor(secs / 3600) + 'h';
  return Math.floor(secs / 86400) + 'd';
}

export function fmtDuration(start, end) {
  if (!start) return '—';
  const secs = (end || Date.now() / 1000) - start;
  // Start and end are whole seconds: below one second, say so rather than "0 ms".
  if (end && secs < 1) return 'under 1s';
  return fmtSeconds(secs) + (end ? '' : ' so far');
}

export function fmtSeconds(secs) {
  if (secs < 0) secs = 0;
  if (secs < 1) return Math.round(secs * 1000) + ' ms';
  if (secs < 10) return secs.toFixed(1) + 's';
  if (secs < 120) return Math.round(secs) + 's';
  return Math.floor(secs / 60) + 'm ' + Math.round(secs % 60) + 's';
}

export function fmtMs(ms) {
  if (ms === undefined || ms === null) return '—';
  return ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(1) + ' s';
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
}

export function shortDigest(d) {
  if (!d) return '—';
  const [alg, hex] = d.split(':');
  return hex ? alg + ':' + hex.slice(0, 12) + '…' : d;
}

export function firstLine(text) {
  return (text || '').split('\n')[0];
}

// ---------- building blocks ----------

// A status badge; the class picks the colour, the text is the status itself.
export function badge(status, test) {
  const st = String(status || 'unknown');
  return h('span', {class: 'badge badge-' + st.toLowerCase(), dataset: {test: test || 'status'}}, st);
}

export function errorBox(err) {
  const msg = err && err.message ? err.message : String(err);
  return h('div', {class: 'error-box', role: 'alert', dataset: {test: 'error'}}, msg);
}

// Shows an error (or clears it when err is null) in a slot next to the action that failed.
export function showError(slot, err) {
  if (!slot) return;
  fill(slot, err ? errorBox(err) : null);
}

export function loading(what) {
  return h('p', {class: 'loading', dataset: {test: 'loading'}, 'aria-live': 'polite'},
    'Loading ' + (what || '') + '…');
}

export function empty(text, action) {
  return h('div', {class: 'empty', dataset: {test: 'empty'}}, h('p', null, text), action || null);
}

// The 412 answer of a subsystem that is off or cannot run: the server's reason as an empty state.
export function unavailable(err) {
  return h('div', {class: 'empty unavailable', dataset: {test: 'unavailable'}},
    h('p', {class: 'empty-title'}, 'Not available on this berthd'),
    h('p', null, err.message));
}

// A section body for an error: 412 becomes the empty state, anything else an error box.
export function failure(err) {
  return err && err.status === 412 ? unavailable(err) : errorBox(err);
}

export function section(title, ...children) {
  return h('section', {class: 'card'}, h('h2', null, title), ...children);
}

export function table(headers, rows, test) {
  return h('div', {class: 'table-wrap'},
    h('table', {dataset: {test: test || 'table'}},
      h('thead', null, h('tr', null, headers.map((t) => h('th', {scope: 'col'}, t)))),
      h('tbody', null, rows)));
}

let fieldSeq = 0;
// A labelled form control. `control` is an <input>/<select>/<textarea> element; it gets an id.
export function field(label, control, hint) {
  if (!control.id) control.id = 'f' + (++fieldSeq);
  return h('div', {class: 'field'},
    h('label', {for: control.id}, label),
    control,
    hint ? h('small', {class: 'hint'}, hint) : null);
}

// A button that is disabled, with the reason as its title and as visible text after it,
// when the principal may not do what it does. `perm` is a result from api.permissions().
export function actionButton(label, perm, onclick, attrs) {
  const allowed = !perm || perm.allowed;
  const reason = allowed ? null : denyReason(perm);
  const btn = h('button', Object.assign({type: 'button', disabled: !allowed, title: reason || null,
    onclick: allowed ? onclick : null}, attrs || {}), label);
  if (allowed) return btn;
  return h('span', {class: 'denied-action'}, btn,
    h('small', {class: 'deny-reason', dataset: {test: 'deny-reason'}}, reason));
}

export function denyReason(perm) {
  return perm.reason || `You may not do ${perm.action} on ${perm.resource}`;
}

// A value with a copy button (secrets shown once, docker pull commands).
export function copyable(text, test) {
  const code = h('code', {class: 'copy-text', dataset: {test: test || 'copy-text'}}, text);
  const btn = h('button', {type: 'button', class: 'small', dataset: {test: 'copy-button'}}, 'Copy');
  btn.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      btn.textContent = 'Copied';
    } catch {
      // No clipboard permission (plain http on another host): select the text instead.
      const r = document.createRange();
      r.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
      btn.textContent = 'Selected: press Ctrl+C';
    }
    setTimeout(() => { btn.textContent = 'Copy'; }, 2000);
  });
  return h('span', {class: 'copyable'}, code, btn);
}

// An in-page confirmation. `body` names exactly what will happen. Resolves true or false.
// With `action`, the dialog runs it on confirm, keeps itself open and shows the error inside
// if it fails (so the server's sentence is next to where the action happened).
export function confirmDialog({title, body, confirmLabel, danger, action}) {
  return new Promise((resolve) => {
    const errSlot = h('div', {class: 'dialog-error'});
    const ok = h('button', {type: 'button', class: danger ? 'danger' : 'primary',
      dataset: {test: 'confirm-ok'}}, confirmLabel || 'Confirm');
    const cancel = h('button', {type: 'button', dataset: {test: 'confirm-cancel'}}, 'Cancel');
    const dlg = h('dialog', {class: 'dialog', dataset: {test: 'confirm-dialog'}, 'aria-labelledby': 'dlg-title'},
      h('h2', {id: 'dlg-title'}, title || 'Are you sure?'),
      h('p', {class: 'dialog-body', dataset: {test: 'confirm-text'}}, body),
      errSlot,
      h('div', {class: 'dialog-buttons'}, cancel, ok));
    const opener = document.activeElement;
    document.body.append(dlg);
    let done = false;
    const close = (v) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      // Back to where the keyboard was (when that control is still on the page).
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(v);
    };
    cancel.addEventListener('click', () => close(false));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); close(false); });
    ok.addEventListener('click', async () => {
      if (!action) return close(true);
      ok.disabled = true;
      ok.textContent = 'Working…';
      try {
        await action();
        close(true);
      } catch (err) {
        showError(errSlot, err);
        ok.disabled = false;
        ok.textContent = confirmLabel || 'Confirm';
      }
    });
    dlg.showModal();
    cancel.focus();
  });
}

// Runs an async action from a button, disabling it while it runs and putting the error in
// `slot`. Returns the action's result, or undefined when it failed.
export async function busy(btn, slot, fn) {
  const label = btn ? btn.textContent : '';
  if (btn) { btn.disabled = true; btn.textContent = 'Working…'; }
  showError(slot, null);
  try {
    return await fn();
  } catch (err) {
    showError(slot, err);
    return undefined;
  } finally {
    if (btn && btn.isConnected) { btn.disabled = false; btn.textContent = label; }
  }
}

// ---------- charts (inline SVG) ----------

// A small sparkline of numbers; null values leave gaps.
export function sparkline(values, {width = 120, height = 28, label = ''} = {}) {
  const svg = s('svg', {class: 'sparkline', width, height, viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': label});
  const nums = values.filter((v) => typeof v === 'number');
  if (nums.length < 2) {
    svg.append(s('line', {x1: 0, y1: height - 1, x2: width, y2: height - 1, class: 'spark-base'}));
    return svg;
  }
  const max = Math.max(...nums) || 1;
  const step = width / (values.length - 1);
  svg.append(s('path', {class: 'spark-line', d: pathFor(values, (i) => i * step,
    (v) => height - 2 - (v / max) * (height - 4))}));
  return svg;
}

function pathFor(values, x, y) {
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (typeof v !== 'number') { pen = false; return; }
    d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1) + ' ';
    pen = true;
  });
  return d.trim();
}

// A line chart: `times` (unix seconds) on x, one or more series [{name, values, cls}] on y.
export function lineChart({title, times, series, unit = '', height = 160, width = 560}) {
  const pad = {l: 48, r: 8, t: 8, b: 22};
  const all = series.flatMap((se) => se.values).filter((v) => typeof v === 'number');
  const max = niceMax(all.length ? Math.max(...all) : 1);
  const t0 = times[0] || 0;
  const t1 = times[times.length - 1] || t0 + 1;
  const x = (i) => pad.l + ((times[i] - t0) / Math.max(1, t1 - t0)) * (width - pad.l - pad.r);
  const y = (v) => pad.t + (1 - v / max) * (height - pad.t - pad.b);
  const svg = s('svg', {class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': title, preserveAspectRatio: 'none'});
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    svg.append(s('line', {class: 'grid', x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v)}),
      s('text', {class: 'axis', x: pad.l - 4, y: y(v) + 4, 'text-anchor': 'end'}, fmtAxis(v) + unit));
  }
  if (times.length) {
    svg.append(s('text', {class: 'axis', x: pad.l, y: height - 4}, new Date(t0 * 1000).toISOString().slice(11, 16)),
      s('text', {class: 'axis', x: width - pad.r, y: height - 4, 'text-anchor': 'end'},
        new Date(t1 * 1000).toISOString().slice(11, 16) + ' UTC'));
  }
  series.forEach((se, n) => {
    svg.append(s('path', {class: 'series series-' + (se.cls || n), d: pathFor(se.values, x, y)}));
  });
  const legend = h('div', {class: 'legend'}, series.map((se, n) =>
    h('span', {class: 'legend-item'}, h('span', {class: 'swatch series-' + (se.cls || n)}), se.name)));
  return h('figure', {class: 'chart-box'}, h('figcaption', null, title), svg, legend);
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmtAxis(v) {
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + 'k';
  if (Number.isInteger(v)) return String(v);
  return v >= 100 ? String(Math.round(v)) : String(Math.round(v * 10) / 10);
}
