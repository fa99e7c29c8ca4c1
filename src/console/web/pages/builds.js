// pages/builds.js: build projects (source, branch, role, webhook URL, git remote), creating
// one (its webhook secret is shown once), starting a build, and the recent builds.

import * as api from '../api.js';
import {h, fill, loading, empty, failure, table, ago, fmtDuration, field, busy, actionButton,
  confirmDialog, copyable, badge, denyReason, firstLine} from '../ui.js';

export default async function render(ctx) {
  const projBody = h('div', null, loading('projects'));
  const buildBody = h('div', null, loading('builds'));
  const formSlot = h('div');
  const startErr = h('div', {class: 'form-error'});
  fill(ctx.root, h('div', {class: 'page-head'}, h('h1', null, 'Builds')),
    h('section', {class: 'card'}, h('h2', null, 'Projects'), startErr, projBody),
    formSlot,
    h('section', {class: 'card'}, h('h2', null, 'Recent builds'), buildBody));

  const loadBuilds = async () => {
    try {
      const list = (await api.get('/api/v1/builds?limit=50')).builds;
      if (!ctx.alive()) return;
      fill(buildBody, list.length ? buildTable(ctx, list) : empty('No builds yet: push to a project\'s git remote, or start one above.'));
    } catch (e) {
      if (ctx.alive()) fill(buildBody, failure(e));
    }
  };

  const loadProjects = async () => {
    let projects;
    try {
      projects = (await api.get('/api/v1/build/projects')).projects;
    } catch (e) {
      if (ctx.alive()) { fill(projBody, failure(e)); fill(formSlot); }
      return false;
    }
    const perms = await api.permissions(projects.flatMap((p) => [
      ['build:StartBuild', 'project/' + p.name], ['build:DeleteProject', 'project/' + p.name]]));
    if (!ctx.alive()) return false;
    if (!projects.length) {
      fill(projBody, empty('No build projects yet — create one below.'));
      return true;
    }
    fill(projBody, table(['Project', 'Source', 'Branch', 'Image', 'Role', 'Webhook URL / git remote', ''],
      projects.map((p, i) => h('tr', {dataset: {test: 'project-row', name: p.name}},
        h('td', null, h('strong', null, p.name)),
        h('td', null, p.git ? h('code', null, p.git) : h('span', {class: 'muted'}, 'berth\'s git remote')),
        h('td', null, p.branch || '—'),
        h('td', null, h('code', null, p.image || `${p.repository}:${p.tag}`)),
        h('td', null, p.role || h('span', {class: 'muted'}, 'owner\'s rights')),
        h('td', null, h('div', null, copyable(p.webhook_url, 'webhook-url')), h('div', null, copyable(p.git_remote, 'git-remote'))),
        h('td', {class: 'row-actions'},
          actionButton('Start build', perms[2 * i], async (e) => {
            const r = await busy(e.target, startErr, () => api.post(`/api/v1/build/projects/${api.enc(p.name)}/builds`, {}));
            if (r && r.id && ctx.alive()) ctx.navigate('/builds/' + r.id);
          }, {class: 'small primary', dataset: {test: 'start-build'}}),
          actionButton('Delete', perms[2 * i + 1], () => confirmDialog({
            title: 'Delete build project',
            body: `Delete build project ${p.name}? Its running builds stop; its builds, logs and git remote are deleted (pushed images stay).`,
            confirmLabel: 'Delete ' + p.name, danger: true,
            action: async () => { await api.del('/api/v1/build/projects/' + api.enc(p.name)); loadProjects(); },
          }), {class: 'small danger', dataset: {test: 'project-delete'}})))), 'projects'));
    return true;
  };

  const ok = await loadProjects();
  if (ok) {
    const [perm] = await api.permissions([['build:CreateProject', 'project/*']]);
    if (ctx.alive()) fill(formSlot, createForm(perm, loadProjects));
  }
  await loadBuilds();
  const timer = setInterval(() => { if (!document.hidden) loadBuilds(); }, 5000);
  ctx.onCleanup(() => clearInterval(timer));
}

export function buildTable(ctx, list) {
  return table(['Build', 'Status', 'Phase', 'Commit', 'Trigger', 'Started', 'Duration'], list.map((b) =>
    h('tr', {dataset: {test: 'build-row', id: b.id}},
      h('td', null, h('a', {href: ctx.url('/builds/' + b.id)}, `#${b.id} ${b.project}`)),
      h('td', null, badge(b.status, 'build-status'), b.reason ? h('div', {class: 'reason'}, firstLine(b.reason)) : null),
      h('td', null, b.phase || '—'),
      h('td', null, b.commit ? h('code', {title: b.commit}, b.commit.slice(0, 7)) : '—', b.branch ? ' ' + b.branch : ''),
      h('td', null, b.trigger || '—'),
      h('td', null, ago(b.started_at || b.created_at)),
      h('td', null, b.started_at ? fmtDuration(b.started_at, b.finished_at) : '—'))), 'builds');
}

function createForm(perm, reload) {
  const inputs = {
    name: h('input', {type: 'text', required: true, placeholder: 'web-build', spellcheck: 'false', dataset: {test: 'project-name'}}),
    repository: h('input', {type: 'text', required: true, placeholder: 'web/app', spellcheck: 'false', dataset: {test: 'project-repo'}}),
    tag: h('input', {type: 'text', placeholder: 'latest', spellcheck: 'false'}),
    git: h('input', {type: 'url', placeholder: 'https://github.com/me/app.git (optional)', spellcheck: 'false'}),
    branch: h('input', {type: 'text', placeholder: 'main', spellcheck: 'false'}),
    dockerfile: h('input', {type: 'text', placeholder: 'Dockerfile', spellcheck: 'false'}),
    context: h('input', {type: 'text', placeholder: '.', spellcheck: 'false'}),
    role: h('input', {type: 'text', placeholder: 'none: the creator\'s rights', spellcheck: 'false'}),
  };
  const errSlot = h('div', {class: 'form-error'});
  const secretSlot = h('div', {'aria-live': 'polite'});
  const submit = h('button', {type: 'submit', class: 'primary', disabled: !perm.allowed,
    title: perm.allowed ? null : denyReason(perm), dataset: {test: 'project-create'}}, 'Create project');
  const form = h('form', {class: 'card form'},
    h('h2', null, 'New build project'),
    h('div', {class: 'inline-fields'},
      field('Name', inputs.name), field('Target repository', inputs.repository), field('Tag', inputs.tag),
      field('Git URL', inputs.git, 'Empty: build only what is pushed to berth\'s own git remote.'),
      field('Branch filter', inputs.branch), field('Dockerfile', inputs.dockerfile), field('Context', inputs.context),
      field('Role', inputs.role)),
    errSlot,
    perm.allowed ? null : h('small', {class: 'deny-reason'}, denyReason(perm)),
    h('div', {class: 'form-buttons'}, submit),
    secretSlot);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {};
    for (const [k, el] of Object.entries(inputs)) if (el.value.trim()) body[k] = el.value.trim();
    const p = await busy(submit, errSlot, () => api.post('/api/v1/build/projects', body));
    if (!p) return;
    form.querySelectorAll('input').forEach((i) => { i.value = ''; });
    fill(secretSlot, h('div', {class: 'secret-once', dataset: {test: 'secret-once'}},
      h('p', null, h('strong', null, `Created ${p.name}.`), ' Its webhook secret is shown this once: give it to GitHub with the webhook URL (content type application/json).'),
      h('dl', {class: 'facts'},
        h('dt', null, 'Webhook secret'), h('dd', null, copyable(p.webhook_secret, 'secret-value')),
        h('dt', null, 'Webhook URL'), h('dd', null, copyable(p.webhook_url)),
        h('dt', null, 'Git remote'), h('dd', null, copyable(p.git_remote)))));
    reload();
  });
  return form;
}
