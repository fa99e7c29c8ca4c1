// pages/service.js: one service, live. The watch stream (GET /api/v1/services/NAME/watch,
// server-sent events `service` and `deployments`) redraws the status, the instances and the
// deployment timeline as they change; the charts poll the metrics endpoint every 10 s.
// Actions: deploy, rollback, pause/resume, scale, env, delete — each confirmed in a dialog.

import * as api from '../api.js';
import {h, fill, badge, loading, failure, errorBox, section, table, ago, fmtTime, fmtDuration,
  shortDigest, firstLine, actionButton, confirmDialog, field, empty} from '../ui.js';
import {scaleForm, envForm} from './service_forms.js';
import {charts} from './service_charts.js';

export default async function render(ctx) {
  const name = ctx.params.name;
  const base = `/api/v1/services/${api.enc(name)}`;
  const res = `service/${name}`;

  fill(ctx.root, h('h1', null, name), loading('service'));
  let svc;
  let deployments;
  let perms;
  try {
    [svc, deployments, perms] = await Promise.all([
      api.get(base),
      api.get(`${base}/deployments?limit=20`).then((r) => r.deployments),
      api.permMap({
        deploy: ['service:Deploy', res], rollback: ['service:Rollback', res],
        pause: ['service:PauseService', res], resume: ['service:ResumeService', res],
        update: ['service:UpdateService', res], remove: ['service:DeleteService', res],
        logs: ['service:GetLogs', res],
      }),
    ]);
  } catch (e) {
    if (!ctx.alive()) return;
    fill(ctx.root, h('h1', null, name), failure(e),
      h('p', null, h('a', {href: ctx.url('/services')}, 'Back to services')));
    return;
  }
  if (!ctx.alive()) return;

  // ----- the parts the live stream redraws -----
  const statusEl = h('span', {class: 'head-badge'});
  const liveEl = h('span', {class: 'live', dataset: {test: 'live-state'}, 'aria-live': 'polite'}, 'connecting…');
  const summaryEl = h('section', {class: 'card summary'});
  const instancesEl = h('div');
  const specEl = h('div');
  const timelineEl = h('ol', {class: 'timeline', dataset: {test: 'deployments'}});
  const actionsEl = h('div', {class: 'actions'});
  const actionErr = h('div', {class: 'form-error', dataset: {test: 'action-error'}, 'aria-live': 'polite'});

  const state = {svc, deployments};
  // The actions are rebuilt only when what they depend on changes: rebuilding them on every
  // live update (in-flight counts change several times a second) would take the keyboard
  // focus and the text being typed out of the deploy field.
  let actionsKey = '';
  const draw = () => {
    fill(statusEl, badge(state.svc.status, 'service-status'));
    drawSummary(summaryEl, state.svc);
    drawInstances(instancesEl, state.svc);
    drawSpec(specEl, state.svc);
    drawTimeline(timelineEl, state.deployments, state.svc);
    const target = rollbackTarget();
    const key = JSON.stringify([state.svc.status, state.svc.paused, state.svc.revision,
      target ? target.id : 0]);
    if (key !== actionsKey) {
      actionsKey = key;
      drawActions();
    }
  };

  // ----- actions -----
  const deployInput = h('input', {type: 'text', list: 'deploy-images', spellcheck: 'false',
    placeholder: `${svc.image} (empty: the service's image)`, dataset: {test: 'deploy-image'}});
  const deployOptions = h('datalist', {id: 'deploy-images'});

  function rollbackTarget() {
    return state.deployments.find((d) => d.status === 'SUCCEEDED' && d.revision !== state.svc.revision);
  }

  function drawActions() {
    const s = state.svc;
    const deployBtn = actionButton('Deploy', perms.deploy, async () => {
      const img = deployInput.value.trim();
      const what = img || `${s.image} (resolved again now)`;
      await confirmDialog({
        title: 'Deploy',
        body: `Deploy ${what} to service ${name}? New instances start and take the traffic once healthy; the old ones drain.`,
        confirmLabel: 'Deploy',
        action: () => api.post(`${base}/deploy`, img ? {image: img} : {}),
      });
    }, {class: 'primary', dataset: {test: 'deploy-button'}});

    const target = rollbackTarget();
    let rollbackBtn;
    if (!perms.rollback.allowed || target) {
      rollbackBtn = actionButton('Roll back', perms.rollback, () => confirmDialog({
        title: 'Roll back',
        body: `Roll back service ${name} to revision ${target.revision} (${shortDigest(target.digest)})?`,
        confirmLabel: 'Roll back',
        action: () => api.post(`${base}/rollback`),
      }), {dataset: {test: 'rollback-button'}});
    } else {
      rollbackBtn = h('span', {class: 'denied-action'},
        h('button', {type: 'button', disabled: true, dataset: {test: 'rollback-button'},
          title: 'No earlier successful revision'}, 'Roll back'),
        h('small', {class: 'deny-reason'}, 'No earlier successful revision to roll back to'));
    }

    const pauseBtn = s.paused
      ? actionButton('Resume', perms.resume, () => confirmDialog({
        title: 'Resume', body: `Resume service ${name}? Revision ${s.revision} starts again and takes traffic once healthy.`,
        confirmLabel: 'Resume', action: () => api.post(`${base}/resume`),
      }), {dataset: {test: 'resume-button'}})
      : actionButton('Pause', perms.pause, () => confirmDialog({
        title: 'Pause', body: `Pause service ${name}? It leaves the route table (requests get 503) and its instances stop. Its history stays.`,
        confirmLabel: 'Pause', danger: true, action: () => api.post(`${base}/pause`),
      }), {dataset: {test: 'pause-button'}});

    const deleteBtn = actionButton('Delete service', perms.remove, async () => {
      const ok = await confirmDialog({
        title: 'Delete service',
        body: `Delete service ${name}? Its instances stop, and its revisions, deployment history and logs are deleted. This cannot be undone.`,
        confirmLabel: 'Delete ' + name, danger: true,
        action: () => api.del(base),
      });
      if (ok && ctx.alive()) ctx.navigate('/services');
    }, {class: 'danger', dataset: {test: 'delete-button'}});

    fill(actionsEl,
      h('div', {class: 'action-row'},
        field('Image or tag to deploy', deployInput),
        deployOptions, deployBtn),
      h('div', {class: 'action-row'}, rollbackBtn, pauseBtn, deleteBtn),
      actionErr);
  }

  // ----- layout -----
  const logsLink = perms.logs.allowed
    ? h('a', {class: 'button', href: ctx.url(`/services/${encodeURIComponent(name)}/logs`), dataset: {test: 'logs-link'}}, 'Logs')
    : h('span', {class: 'deny-reason', title: perms.logs.reason}, perms.logs.reason);
  const chartsEl = h('div', {class: 'charts'});
  fill(ctx.root,
    h('p', {class: 'crumbs'}, h('a', {href: ctx.url('/services')}, 'Services'), ' / ', name),
    h('div', {class: 'page-head'}, h('h1', null, name), statusEl, liveEl, h('span', {class: 'spacer'}), logsLink),
    h('div', {class: 'grid-2'}, summaryEl, section('Actions', actionsEl)),
    section('Instances', instancesEl),
    section('Deployments', timelineEl),
    section('Traffic (last hour)', chartsEl),
    h('div', {class: 'grid-2'},
      section('Configuration of the serving revision', specEl),
      section('Scaling and environment',
        scaleForm(ctx, name, base, svc, perms.update),
        envForm(ctx, name, base, svc, perms.update))));
  draw();
  charts(ctx, base, chartsEl);

  // Image suggestions for the deploy field: the tags of the service's repository.
  const repo = svc.image.split(/[:@]/)[0];
  api.get(`/api/v1/repositories/${api.enc(repo)}/images`).then((r) => {
    for (const img of r.images) for (const t of img.tags || []) deployOptions.append(h('option', {value: `${repo}:${t}`}));
  }).catch(() => {});

  // ----- live updates -----
  let poll = null;
  const startPolling = () => {
    if (poll) return;
    poll = setInterval(async () => {
      try {
        state.svc = await api.get(base);
        state.deployments = (await api.get(`${base}/deployments?limit=20`)).deployments;
        if (ctx.alive()) draw();
      } catch (e) {
        if (e.status === 404) fill(summaryEl, errorBox(e));
      }
    }, 3000);
  };
  const es = api.stream(`${base}/watch`, {
    service: (s) => { state.svc = s; if (ctx.alive()) draw(); },
    deployments: (d) => { state.deployments = d.deployments; if (ctx.alive()) draw(); },
    // The service is gone (deleted here or elsewhere): say so, and offer nothing to act on.
    deleted: (d, src) => {
      src.close();
      if (!ctx.alive()) return;
      fill(ctx.root, h('p', {class: 'crumbs'}, h('a', {href: ctx.url('/services')}, 'Services')),
        h('h1', null, d.service),
        empty(`Service ${d.service} was deleted.`, h('a', {href: ctx.url('/services')}, 'All services')));
    },
    // The server ended the stream: signed out, or the right to read this service is gone.
    ended: (d, src) => {
      src.close();
      api.get('/api/v1/auth/whoami').catch(() => {});  // a 401 goes to the login page
      fill(liveEl, 'not live: ' + d.reason);
    },
  }, {
    onState: (st) => {
      fill(liveEl, st === 'live' ? '● live' : st === 'closed' ? 'updates every 3 s' : 'reconnecting…');
      liveEl.dataset.state = st;
      if (st === 'closed') startPolling();
    },
  });
  ctx.onCleanup(() => { es.close(); if (poll) clearInterval(poll); });
}

function drawSummary(el, s) {
  fill(el, h('dl', {class: 'facts'},
    fact('Status', h('span', {dataset: {test: 'status-text'}}, s.status + (s.paused ? ' (paused)' : ''))),
    s.reason ? fact('Reason', h('pre', {class: 'reason', dataset: {test: 'service-reason'}}, s.reason)) : null,
    fact('URL', s.url ? h('a', {href: s.url, rel: 'noopener', dataset: {test: 'service-url'}}, s.url) : '—'),
    fact('Image', h('code', null, s.image)),
    fact('Revision', s.revision ? h('span', null, 'r' + s.revision, ' ',
      h('code', {class: 'muted', title: s.digest}, shortDigest(s.digest))) : 'none yet'),
    fact('Restarts', String(s.restarts || 0)),
    fact('Created', fmtTime(s.created_at))));
}

function fact(k, v) {
  return [h('dt', null, k), h('dd', null, v)];
}

function drawInstances(el, s) {
  const list = s.instances || [];
  if (!list.length) {
    fill(el, h('p', {class: 'muted', dataset: {test: 'no-instances'}},
      s.paused ? 'Paused: no instance runs.' : 'No instance is running.'));
    return;
  }
  fill(el, table(['Instance', 'Revision', 'State', 'In flight', 'Started'],
    list.map((i) => h('tr', {dataset: {test: 'instance'}},
      h('td', null, h('code', null, i.id)),
      h('td', null, 'r' + i.revision),
      h('td', null, badge(i.state, 'instance-state')),
      h('td', null, String(i.in_flight)),
      h('td', {title: fmtTime(i.started_at)}, ago(i.started_at)))), 'instances'));
}

function drawSpec(el, s) {
  const spec = s.spec || {};
  const rows = [];
  for (const [k, v] of Object.entries(spec)) {
    let text;
    if (k === 'secret_env') {
      text = (v || []).length ? (v || []).map((n) => `${n} (set)`).join(', ') : '—';
    } else if (k === 'env') {
      const e = Object.entries(v || {});
      text = e.length ? e.map(([n, val]) => `${n}=${val}`).join('\n') : '—';
    } else if (v !== null && typeof v === 'object') {
      text = Object.entries(v).map(([n, val]) => `${n}: ${typeof val === 'object' ? JSON.stringify(val) : val}`).join('\n');
    } else {
      text = v === '' || v === null ? '—' : String(v);
    }
    rows.push(h('tr', null, h('th', {scope: 'row'}, k), h('td', null, h('code', {class: 'pre'}, text))));
  }
  fill(el, rows.length ? h('div', {class: 'table-wrap'}, h('table', {class: 'kv', dataset: {test: 'spec'}}, h('tbody', null, rows)))
    : h('p', {class: 'muted'}, 'No configuration.'));
}

function drawTimeline(el, deployments, s) {
  if (!deployments.length) {
    fill(el, h('li', {class: 'muted'}, s.status === 'waiting'
      ? 'Waiting for the first push of ' + s.image + '.' : 'No deployments yet.'));
    return;
  }
  fill(el, deployments.map((d) => {
    const running = d.status === 'IN_PROGRESS' || d.status === 'QUEUED';
    const lines = (d.reason || '').split('\n');
    return h('li', {class: 'tl-item tl-' + d.status.toLowerCase(), dataset: {test: 'deployment', id: d.id, status: d.status}},
      h('div', {class: 'tl-head'},
        badge(d.status, 'deployment-status'),
        h('strong', null, ` #${d.id} · revision ${d.revision}`),
        d.revision === s.revision && d.status === 'SUCCEEDED' ? h('span', {class: 'pill'}, 'serving') : null,
        h('span', {class: 'muted'}, ` ${d.trigger} · ${ago(d.created_at)}`)),
      h('div', {class: 'tl-meta'},
        h('code', {title: d.digest}, shortDigest(d.digest)), ' · ',
        running ? h('span', null, d.started_at ? 'running for ' + fmtDuration(d.started_at, 0) : 'queued')
          : h('span', null, 'took ' + fmtDuration(d.started_at || d.created_at, d.finished_at || d.created_at))),
      running ? h('div', {class: 'progress', role: 'progressbar', 'aria-label': 'deployment in progress'}, h('span')) : null,
      d.reason ? (lines.length > 1
        ? h('details', {class: 'reason'}, h('summary', {dataset: {test: 'deployment-reason'}}, firstLine(d.reason)),
          h('pre', null, lines.slice(1).join('\n')))
        : h('p', {class: 'reason', dataset: {test: 'deployment-reason'}}, d.reason)) : null);
  }));
}
