// SPDX-License-Identifier: LGPL-2.1-or-later
// The dashboard of bootback web.  Everything comes as JSON from /session,
// /ui/overview and /api/v1/*; every value is put into the page as text
// (el() below: text nodes, textContent), never as HTML.  Links and image
// sources are this server's paths with encodeURIComponent'd arguments.
// Actions (stop, migrate) are POST /api/v1/jobs with the session's CSRF
// token in X-CSRF-Token; their jobs are polled until done or failed.
'use strict';
(() => {
  const PAGE = 50;                  // restore points per page
  const POLL_MS = 1000;             // job progress
  const $ = (id) => document.getElementById(id);
  let csrf = null;
  let role = 'read';              // the token's (web/web.h): read starts no job
  const READ_ONLY = 'this token\'s role is read: it starts no job';
  const points = { cursor: 0, total: 0, vm: '' };
  const charts = {};

  // An element: props set as properties or attributes, children as text
  // nodes (strings) or nodes.
  function el (tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids)
      e.append(k instanceof Node ? k : document.createTextNode(k == null ? '' : String(k)));
    return e;
  }
  const rows = (table, trs) => $(table).tBodies[0].replaceChildren(...trs);
  const empty = (n, text) => el('tr', {}, el('td', { colspan: n, class: 'muted' }, text));

  function say (text) { $('status').textContent = text || ''; }

  async function api (path, opts) {
    const r = await fetch(path, Object.assign({ credentials: 'same-origin', cache: 'no-store' }, opts));
    if (r.status === 401) {
      location.replace('/login');
      throw new Error('not logged in');
    }
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw Object.assign(new Error(j.error || 'HTTP ' + r.status), { status: r.status });
    return j;
  }
  const q = (o) => Object.entries(o).filter(([, v]) => v !== '' && v != null)
    .map(([k, v]) => k + '=' + encodeURIComponent(v)).join('&');

  function bytes (n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    for (; n >= 1024 && i < u.length - 1; i++) n /= 1024;
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }
  const when = (iso) => iso ? iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, 'Z') : '';
  const secs = (s) => s == null ? '-' : Number(s).toFixed(1);
  const VERDICT = { pass: 'passed', fail: 'failed' };   // lab_vms' words
  const badge = (status) => el('span', { class: 'badge ' + (/^pass/.test(status) ? 'ok' : 'bad') },
                               VERDICT[status] || status);
  function lease (expires) {
    if (!expires) return 'none';
    const left = expires - Date.now() / 1000;
    if (left <= 0) return 'expired';
    const h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60);
    return (h ? h + ' h ' : '') + m + ' min left';
  }
  const fileUrl = (what, labvm, run) => '/ui/' + what + '?' + q({ vm: labvm, run: run });

  // ---- VMs ---------------------------------------------------------------
  const verifyJobs = new Map();   // VM -> its last verify job, once ended
  function vmRow (v) {
    const ver = v.verification;
    const shot = ver && ver.screenshot && ver.run
      ? el('a', { href: fileUrl('shot', ver.labvm, ver.run), target: '_blank', rel: 'noopener' },
           el('img', { class: 'thumb', alt: 'screenshot of ' + v.vm, loading: 'lazy',
                       src: fileUrl('shot', ver.labvm, ver.run) }))
      : el('span', { class: 'muted' }, '-');
    const report = ver && ver.report && ver.run
      ? el('a', { href: fileUrl('report', ver.labvm, ver.run), target: '_blank', rel: 'noopener' }, 'report')
      : el('span', { class: 'muted' }, '-');
    // Verify now: a verify job of the VM's newest point; when it ends,
    // the overview is loaded again (its verdict, screenshot, report).
    const job = el('td', { class: 'job' });
    if (verifyJobs.has(v.vm))
      showJob(job, verifyJobs.get(v.vm));
    const verify = el('button', { type: 'button', class: 'verify', onclick: () =>
      startJob({ action: 'verify', vm: v.vm }, job,
               (j) => { verifyJobs.set(v.vm, j); return loadOverview(); }) }, 'Verify now');
    verify.disabled = !v.points || role === 'read';
    if (role === 'read') verify.title = READ_ONLY;
    const tr = el('tr', { class: 'clickable', title: 'show its lab runs and RTO', tabindex: 0,
                          'data-vm': v.vm },
      el('td', { class: 'vm' }, v.vm),
      el('td', {}, v.last_point ? v.last_point.id : '-'),
      el('td', { class: 'num' }, v.points),
      el('td', {}, ver ? badge(ver.status) : el('span', { class: 'muted' }, 'never'),
         ' ', ver ? when(ver.started) : ''),
      el('td', {}, shot), el('td', {}, report), el('td', {}, verify), job);
    const pick = () => selectVm(v.verification ? v.verification.labvm : v.vm);
    tr.addEventListener('click', (ev) => { if (!ev.target.closest('a, button, td.job')) pick(); });
    tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' && ev.target === tr) pick(); });
    return tr;
  }

  function cards (o) {
    const last = o.usage.length ? o.usage[o.usage.length - 1] : [0, 0, 0, 0];
    const ver = o.vms.filter((v) => v.verification);
    const failed = ver.filter((v) => !/^pass/.test(v.verification.status)).length;
    const card = (label, value, cls) => el('div', { class: 'card ' + (cls || '') },
                                           el('div', { class: 'value' }, value), el('div', { class: 'label' }, label));
    $('cards').replaceChildren(
      card('VMs', o.vms.length),
      card('restore points', o.vms.reduce((n, v) => n + v.points, 0)),
      card('last verification failed', failed, failed ? 'bad' : 'ok'),
      card('stored (of ' + bytes(last[1]) + ')', bytes(last[2])),
      card('dedup ratio', last[3] ? last[3].toFixed(2) + 'x' : '-'));
  }

  async function loadOverview () {
    const o = await api('/ui/overview');
    $('repo').textContent = o.repo ? 'repository ' + o.repo : 'no repository';
    o.vms.sort((a, b) => a.vm < b.vm ? -1 : a.vm > b.vm);
    cards(o);
    rows('vms', o.vms.length ? o.vms.map(vmRow) : [empty(8, 'no VM has a point yet')]);
    const sel = $('rto-vm'), pv = $('points-vm');
    const labvms = [...new Set(o.vms.map((v) => v.verification ? v.verification.labvm : v.vm))];
    sel.replaceChildren(...labvms.map((n) => el('option', { value: n }, n)));
    pv.replaceChildren(el('option', { value: '' }, 'every VM'),
                       ...o.vms.filter((v) => v.points).map((v) => el('option', { value: v.vm }, v.vm)));
    usageChart(o.usage);
    // a VM whose last run the catalog found (a lab VM with a valid name)
    const first = o.vms.find((v) => v.verification && v.verification.run);
    if (first || labvms.length) await selectVm(first ? first.verification.labvm : labvms[0]);
  }

  // ---- charts (uPlot) ----------------------------------------------------
  function chart (id, opts, data) {
    if (charts[id]) charts[id].destroy();
    const box = $(id);
    opts.width = Math.max(300, box.clientWidth);
    opts.height = 240;
    charts[id] = new uPlot(opts, data, box);
  }

  function usageChart (u) {
    $('usage-empty').textContent = u.length ? '' : 'no restore points yet';
    if (!u.length) return;
    const big = u[u.length - 1][1] >= 2 ** 30, unit = big ? 'GiB' : 'MiB';
    const scaled = (i) => u.map((s) => s[i] / 2 ** (big ? 30 : 20));
    chart('usage-chart', {
      series: [{}, { label: 'logical ' + unit, stroke: '#4c78a8', width: 2 },
               { label: 'stored ' + unit, stroke: '#f58518', width: 2, fill: 'rgba(245,133,24,0.1)' },
               { label: 'dedup ratio', stroke: '#54a24b', width: 2, scale: 'x1' }],
      axes: [{}, { label: unit }, { side: 1, scale: 'x1', label: 'dedup', grid: { show: false } }],
    }, [u.map((s) => s[0]), scaled(1), scaled(2), u.map((s) => s[3])]);
  }

  async function selectVm (vm) {
    $('rto-vm').value = vm;
    $('runs-vm').textContent = vm;
    let runs;
    $('rto-empty').textContent = '';
    try {
      runs = (await api('/api/v1/history?' + q({ vm: vm }))).runs;
    } catch (e) {
      runs = [];
      $('rto-empty').textContent = e.message;
    }
    if (!runs.length && !$('rto-empty').textContent)
      $('rto-empty').textContent = 'no lab runs of ' + vm;
    if (charts['rto-chart'] && !runs.length) { charts['rto-chart'].destroy(); delete charts['rto-chart']; }
    const t = runs.map((r) => Date.parse(r.started) / 1000);
    // one run: a day either side, not uPlot's years
    const x = t.length === 1 ? { time: true, range: () => [t[0] - 86400, t[0] + 86400] } : { time: true };
    if (runs.length)
      chart('rto-chart', {
        scales: { x },
        series: [{}, { label: 'boot s', stroke: '#4c78a8', width: 2, points: { show: true } },
                 { label: 'heartbeat s', stroke: '#f58518', width: 2, points: { show: true } },
                 { label: 'app ready s', stroke: '#e45756', width: 2, points: { show: true } }],
        axes: [{}, { label: 'seconds' }],
      }, [t, runs.map((r) => r.t_boot),
          runs.map((r) => r.t_heartbeat), runs.map((r) => r.t_app_ready)]);
    const last = runs.slice(-50).reverse();
    rows('runs', last.length ? last.map((r) => el('tr', {},
      el('td', {}, when(r.started)), el('td', {}, r.lab), el('td', {}, badge(r.status)),
      el('td', { class: 'num' }, secs(r.t_boot)), el('td', { class: 'num' }, secs(r.t_heartbeat)),
      el('td', { class: 'num' }, secs(r.t_app_ready)),
      el('td', { class: 'msg' }, [r.failed_checks, r.message].filter(Boolean).join(': ')),
      el('td', {}, r.report_dir ? el('a', { href: fileUrl('report', vm, r.run), target: '_blank',
                                            rel: 'noopener' }, 'report') : '-')))
      : [empty(8, 'no lab runs')]);
  }

  // ---- restore points, a page at a time ----------------------------------
  async function loadPoints (cursor) {
    const t0 = performance.now();
    const j = await api('/api/v1/points?' + q({ limit: PAGE, cursor: cursor, vm: points.vm }));
    points.cursor = j.offset;
    points.total = j.total;
    rows('points', j.points.length ? j.points.map((p) => el('tr', {},
      el('td', { class: 'vm' }, p.vm), el('td', {}, p.id), el('td', {}, p.kind),
      el('td', {}, p.consistency), el('td', { class: 'num' }, bytes(p.size)),
      el('td', { class: 'num' }, bytes(p.stats.stored_bytes)),
      el('td', {}, p.protected ? 'yes' : ''))) : [empty(7, 'no restore points')]);
    $('points-range').textContent = j.total
      ? (j.offset + 1) + '-' + (j.offset + j.points.length) + ' of ' + j.total : '0 of 0';
    $('points-prev').disabled = $('points-first').disabled = j.offset === 0;
    $('points-next').disabled = $('points-last').disabled = j.next == null;
    document.body.dataset.pointsPage = String(j.offset);
    document.body.dataset.pointsRenders = String(Number(document.body.dataset.pointsRenders || 0) + 1);
    document.body.dataset.pointsMs = String(Math.round(performance.now() - t0));
  }

  // ---- sessions and their jobs -------------------------------------------
  // Start a job of the actions API; its state goes into cell until it
  // ends, then after(job) (default: the sessions again, if it is done).
  async function startJob (body, cell, after) {
    cell.replaceChildren(el('span', { class: 'muted' }, 'sending...'));
    try {
      const j = await api('/api/v1/jobs', {
        method: 'POST', body: JSON.stringify(body),
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      });
      // only this API's job resources are polled
      pollJob(/^\/api\/v1\/jobs\/[\w.-]+$/.test(j.href) ? j.href
                                                      : '/api/v1/jobs/' + encodeURIComponent(j.id),
              cell, after);
    } catch (e) {
      cell.replaceChildren(el('span', { class: 'error' }, body.action + ' refused: ' + e.message));
    }
  }

  // A job's action, state, phase, progress and error, as text.
  function showJob (cell, j) {
    const p = j.progress || {};
    const phase = p.phase !== j.state ? p.phase : '';   // "done done" says it twice
    const text = [j.action, j.state, phase, p.total ? p.done + '/' + p.total : ''].filter(Boolean).join(' ');
    cell.replaceChildren(el('span', { class: j.state === 'failed' ? 'error' : 'muted' }, text),
                         j.error ? el('div', { class: 'error' }, String(j.error)) : '');
    cell.dataset.state = j.state;
  }

  async function pollJob (href, cell, after) {
    let j;
    try {
      j = await api(href);
    } catch (e) {
      cell.replaceChildren(el('span', { class: 'error' }, 'job: ' + e.message));
      return;
    }
    showJob (cell, j);
    if (j.state === 'queued' || j.state === 'running')
      setTimeout(() => pollJob(href, cell, after), POLL_MS);
    else if (after)
      after(j).catch((e) => say(e.message));
    else if (j.state === 'done')
      loadSessions();
  }

  function sessionRow (s) {
    const job = el('td', { class: 'job' });
    const to = el('input', { type: 'text', placeholder: '/srv/vm-disks', size: 14,
                             'aria-label': 'migrate to directory' });
    const live = s.state === 'running' || s.state === 'migrating';
    const actions = el('td', { class: 'actions' },
      el('button', { type: 'button', class: 'danger', onclick: () => {
        if (confirm('Stop session ' + s.name + '?')) startJob({ action: 'stop', session: s.name }, job);
      } }, 'Stop'),
      to,
      el('button', { type: 'button', onclick: () => {
        if (!to.value) { job.replaceChildren(el('span', { class: 'error' }, 'give a directory to migrate to')); return; }
        startJob({ action: 'migrate', session: s.name, to: to.value }, job);
      } }, 'Migrate'));
    for (const b of actions.querySelectorAll('button,input')) {
      b.disabled = !live || role === 'read';
      if (role === 'read') b.title = READ_ONLY;
    }
    return el('tr', {}, el('td', { class: 'vm' }, s.name), el('td', {}, s.vm), el('td', {}, s.point),
              el('td', {}, s.state), el('td', {}, when(s.created)), actions, job);
  }

  async function loadSessions () {
    const j = await api('/api/v1/sessions');
    rows('sessions', j.sessions.length ? j.sessions.map(sessionRow) : [empty(7, 'no sessions')]);
  }

  async function loadLabs () {
    const j = await api('/api/v1/labs');
    rows('labs', j.labs.length ? j.labs.map((l) => el('tr', {},
      el('td', {}, l.id), el('td', {}, l.lab), el('td', {}, l.kind),
      el('td', {}, l.status + (l.alive ? '' : ' (gone)')), el('td', {}, l.owner),
      el('td', {}, when(new Date(l.created * 1000).toISOString())), el('td', {}, lease(l.expires))))
      : [empty(7, 'no labs or sandboxes')]);
  }

  // ---- start -------------------------------------------------------------
  async function logout () {
    await fetch('/logout', { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf } });
    location.replace('/login');
  }

  function wire () {
    $('logout').addEventListener('click', logout);
    $('rto-vm').addEventListener('change', (e) => selectVm(e.target.value).catch((x) => say(x.message)));
    const page = (cursor) => loadPoints(cursor).then(() => say(''), (e) => say(e.message));
    $('points-vm').addEventListener('change', (e) => { points.vm = e.target.value; page(0); });
    $('points-first').addEventListener('click', () => page(0));
    $('points-prev').addEventListener('click', () => page(Math.max(0, points.cursor - PAGE)));
    $('points-next').addEventListener('click', () => page(points.cursor + PAGE));
    $('points-last').addEventListener('click', () =>
      page(Math.max(0, Math.floor((points.total - 1) / PAGE) * PAGE)));
  }

  async function main () {
    const t0 = performance.now();
    wire();
    const s = await api('/session');
    csrf = s.csrf;
    role = s.role;
    $('user').textContent = 'token ' + s.user + ' (' + s.role + ')';
    await Promise.all([loadOverview(), loadPoints(0), loadSessions(), loadLabs()]);
    document.body.dataset.readyMs = String(Math.round(performance.now() - t0));
    document.body.dataset.ready = '1';
  }
  main().catch((e) => { say(e.message); document.body.dataset.ready = 'error'; });
})();
