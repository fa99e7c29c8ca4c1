// pages/repository.js: one repository's images (digest, tags, platform, size, pushed-at),
// their referrers (signatures, SBOMs: the OCI referrers API, /v2/REPO/referrers/DIGEST), a
// copyable `docker pull` per tag, and deleting a tag or a manifest (confirmed).

import * as api from '../api.js';
import {h, fill, loading, empty, failure, table, fmtTime, ago, fmtBytes, shortDigest, copyable,
  actionButton, confirmDialog} from '../ui.js';
import {isPublic} from './images.js';

// A button that lists the artifacts referring to an image (what `oras discover` shows).
function referrers(repo, digest) {
  const slot = h('div', {class: 'referrers', dataset: {test: 'referrers'}});
  const show = async () => {
    fill(slot, loading('referrers'));
    try {
      const index = await api.get(`/v2/${api.enc(repo)}/referrers/${digest}`);
      const list = (index && index.manifests) || [];
      fill(slot, list.length
        ? h('ul', {class: 'plain-list'}, list.map((m) => h('li', null,
          h('code', {title: m.digest}, shortDigest(m.digest)), ' ',
          m.artifactType || m.mediaType || '', ' · ', fmtBytes(m.size))))
        : h('span', {class: 'muted'}, 'No referrers'));
    } catch (e) {
      fill(slot, failure(e));
    }
  };
  return h('div', null,
    h('button', {type: 'button', class: 'small', onclick: show, dataset: {test: 'referrers-button'}},
      'Referrers'),
    slot);
}

export default async function render(ctx) {
  const repo = ctx.params.repo;
  const base = '/api/v1/repositories/' + api.enc(repo);
  const body = h('div', null, loading('images'));
  const visibility = h('span', {class: 'pill', dataset: {test: 'repo-visibility'}}, '…');
  fill(ctx.root,
    h('p', {class: 'crumbs'}, h('a', {href: ctx.url('/images')}, 'Images'), ' / ', repo),
    h('div', {class: 'page-head'}, h('h1', null, repo), visibility),
    h('section', {class: 'card'}, h('h2', null, 'Images'), body));

  api.get(base + '/policy').then((p) => fill(visibility, isPublic(p.document) ? 'public' : 'private'))
    .catch(() => fill(visibility, '—'));

  const load = async () => {
    let images;
    try {
      images = (await api.get(base + '/images')).images;
    } catch (e) {
      if (ctx.alive()) fill(body, failure(e));
      return;
    }
    const [perm] = await api.permissions([['registry:Delete', 'repository/' + repo]]);
    if (!ctx.alive()) return;
    if (!images.length) {
      fill(body, empty('No images yet. Push one:'),
        copyable(`docker push ${location.host}/${repo}:latest`, 'push-command'));
      return;
    }
    images.sort((a, b) => (b.pushed_at || 0) - (a.pushed_at || 0));
    fill(body, table(['Tags', 'Digest', 'Platform', 'Size', 'Pushed', 'Pull', ''], images.map((img) => {
      const tags = img.tags || [];
      const del = (ref, what) => confirmDialog({
        title: 'Delete image',
        body: what,
        confirmLabel: 'Delete', danger: true,
        action: async () => { await api.del(`${base}/images/${encodeURIComponent(ref)}`); load(); },
      });
      return h('tr', {dataset: {test: 'image-row', digest: img.digest}},
        h('td', null, tags.length ? tags.map((t) => h('span', {class: 'pill tag', dataset: {test: 'tag'}}, t)) : h('span', {class: 'muted'}, 'untagged'),
          img.artifact_type ? h('div', {class: 'muted'}, img.artifact_type) : null),
        h('td', null, h('code', {title: img.digest}, shortDigest(img.digest)),
          img.artifact_type ? null : referrers(repo, img.digest)),
        h('td', null, img.platform || '—'),
        h('td', {class: 'nowrap'}, fmtBytes(img.size)),
        h('td', {class: 'nowrap', title: fmtTime(img.pushed_at)}, ago(img.pushed_at)),
        h('td', null, copyable(`docker pull ${location.host}/${repo}` + (tags.length ? ':' + tags[0] : '@' + img.digest), 'pull-command')),
        h('td', {class: 'row-actions'},
          tags.map((t) => actionButton(`Untag ${t}`, perm, () => del(t,
            `Remove tag ${repo}:${t}? The manifest ${shortDigest(img.digest)} stays${tags.length > 1 ? ' under its other tags' : ' (untagged)'}.`),
          {class: 'small', dataset: {test: 'untag-button'}})),
          actionButton('Delete', perm, () => del(img.digest,
            `Delete manifest ${repo}@${shortDigest(img.digest)}` + (tags.length ? ` and its tags ${tags.join(', ')}?` : '?')),
          {class: 'small danger', dataset: {test: 'image-delete'}})));
    }), 'images'));
  };
  await load();
}
