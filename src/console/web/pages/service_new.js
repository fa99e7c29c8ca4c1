// pages/service_new.js: the "Create service" form (name, image, port, auto-deploy).
// The image field suggests the tags of every repository (a <datalist>).

import * as api from '../api.js';
import {h, fill, field, busy} from '../ui.js';

export default async function render(ctx) {
  const name = h('input', {type: 'text', required: true, pattern: '[a-z0-9]([a-z0-9\\-]{0,38}[a-z0-9])?',
    placeholder: 'web', spellcheck: 'false', dataset: {test: 'service-name'}});
  const image = h('input', {type: 'text', required: true, list: 'image-options', placeholder: 'web/app:latest',
    spellcheck: 'false', dataset: {test: 'service-image'}});
  if (ctx.query.get('image')) image.value = ctx.query.get('image');
  const options = h('datalist', {id: 'image-options'});
  const port = h('input', {type: 'number', min: '1', max: '65535', value: '8080', dataset: {test: 'service-port'}});
  const auto = h('input', {type: 'checkbox', dataset: {test: 'service-auto-deploy'}});
  const errSlot = h('div', {class: 'form-error', 'aria-live': 'polite'});
  const submit = h('button', {type: 'submit', class: 'primary', dataset: {test: 'create-service'}}, 'Create service');
  const form = h('form', {class: 'card form', dataset: {test: 'service-form'}},
    field('Name', name, 'Lower-case letters, digits and -; the service answers at NAME.<apps domain>.'),
    field('Image', image, 'A repository of this berth and a tag (web/app:latest) or a digest.'),
    options,
    field('Port', port, 'The port the app listens on; it gets it as $PORT.'),
    h('div', {class: 'field checkbox'}, auto, h('label', {for: (auto.id = 'auto-deploy')}, 'Deploy every push of this tag (auto-deploy)')),
    errSlot,
    h('div', {class: 'form-buttons'}, h('a', {class: 'button', href: ctx.url('/services')}, 'Cancel'), submit));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {name: name.value.trim(), image: image.value.trim(), port: Number(port.value) || 8080,
      auto_deploy: auto.checked};
    const r = await busy(submit, errSlot, () => api.post('/api/v1/services', body));
    if (r && ctx.alive()) ctx.navigate('/services/' + encodeURIComponent(body.name));
  });

  fill(ctx.root, h('h1', null, 'Create service'), form);
  name.focus();

  // Suggestions: every repository's tags (best effort).
  try {
    const repos = (await api.get('/api/v1/repositories')).repositories.slice(0, 50);
    const lists = await Promise.all(repos.map((r) =>
      api.get(`/api/v1/repositories/${api.enc(r.name)}/images`).then((x) => [r.name, x.images]).catch(() => [r.name, []])));
    if (!ctx.alive()) return;
    for (const [repo, images] of lists) {
      for (const img of images) {
        for (const t of img.tags || []) options.append(h('option', {value: `${repo}:${t}`}));
      }
    }
  } catch { /* no suggestions */ }
}
