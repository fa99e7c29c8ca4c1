// pages/service_charts.js: the service page's traffic charts (last hour, from
// GET /api/v1/services/NAME/metrics), redrawn every 10 s.

import * as api from '../api.js';
import {h, fill, lineChart, failure, empty} from '../ui.js';

export function charts(ctx, base, el) {
  const draw = async () => {
    let m;
    try {
      m = await api.get(`${base}/metrics`);
    } catch (e) {
      if (ctx.alive()) fill(el, failure(e));
      return;
    }
    if (!ctx.alive()) return;
    const pts = m.points || [];
    if (!pts.length) {
      fill(el, empty('No traffic yet.'));
      el.dataset.state = 'empty';
      return;
    }
    el.dataset.state = 'drawn';
    const times = pts.map((p) => p.time);
    const st = (k) => pts.map((p) => (p.status ? p.status[k] || 0 : 0));
    fill(el,
      lineChart({title: 'Requests per second', times, series: [{name: 'requests/s', values: pts.map((p) => p.rps), cls: 'a'}]}),
      lineChart({title: 'Latency', unit: ' ms', times, series: [
        {name: 'p50', values: pts.map((p) => p.p50_ms), cls: 'a'},
        {name: 'p90', values: pts.map((p) => p.p90_ms), cls: 'b'},
        {name: 'p99', values: pts.map((p) => p.p99_ms), cls: 'c'}]}),
      lineChart({title: `Responses by status class (per ${m.interval_seconds || 10} s)`, times, series: [
        {name: '2xx', values: st('2xx'), cls: 'ok'}, {name: '3xx', values: st('3xx'), cls: 'b'},
        {name: '4xx', values: st('4xx'), cls: 'warn'}, {name: '5xx', values: st('5xx'), cls: 'bad'}]}),
      lineChart({title: 'Instances', times, series: [{name: 'instances', values: pts.map((p) => p.instances), cls: 'a'}]}));
  };
  draw();
  const timer = setInterval(() => { if (!document.hidden) draw(); }, 10000);
  ctx.onCleanup(() => clearInterval(timer));
  return h('span');
}
