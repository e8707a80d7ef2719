// SPDX-License-Identifier: LGPL-2.1-or-later
// The dashboard of bootback web in Debian's headless Chromium, driven with
// puppeteer-core (pinned in package.json; no browser download).  Run by
// tests/test-web-ui.sh:
//   node ui.js check URL TOKEN SHOTS   login, content, inert guest text,
//                                      CSRF, screenshots, logout
//   node ui.js perf URL TOKEN SHOTS    load and page-flip times (JSON on
//                                      stdout)
//   node ui.js read URL TOKEN SHOTS    a token of role read: every action
//                                      button disabled, saying why
// Fails (exit 1) with one line naming what is wrong.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

const [mode, url, token, shots] = process.argv.slice(2);
const EVIL = '<script>alert(1)</script><img src=x onerror=alert(2)>';

function check (ok, what) {
  if (!ok) throw new Error(what);
}

async function browser () {
  const args = ['--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args,
    userDataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'bootback-chromium-')),
  });
}

// A page that records dialogs and CSP violations.
async function newPage (b, width, height) {
  const page = await b.newPage();
  await page.setViewport({ width, height });
  page.dialogs = [];
  page.on('dialog', async (d) => { page.dialogs.push(d.type() + ': ' + d.message());
                                   await (d.type() === 'confirm' ? d.accept() : d.dismiss()); });
  await page.evaluateOnNewDocument(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation',
      (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  });
  return page;
}

async function login (page, tok) {
  await page.goto(url + '/', { waitUntil: 'networkidle0' });
  check(page.url() === url + '/login', 'GET / without a session went to ' + page.url() + ', not /login');
  await page.type('#token', tok);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }).catch(() => null),
                     page.click('button[type=submit]')]);
}

async function ready (page) {
  await page.waitForFunction(() => document.body.dataset.ready, { timeout: 60000 });
  const r = await page.evaluate(() => [document.body.dataset.ready, document.getElementById('status').textContent]);
  check(r[0] === '1', 'the dashboard did not load: ' + r[1]);
}

// fetch in the page (its cookie): [status, body text]
const pageFetch = (page, p, opts) => page.evaluate(async (p, opts) => {
  const r = await fetch(p, Object.assign({ credentials: 'same-origin' }, opts));
  return [r.status, await r.text(), r.headers.get('content-security-policy')];
}, p, opts || {});

async function shoot (page, name) {
  const file = path.join(shots, name + '.png');
  await page.screenshot({ path: file });
  return file;
}

async function checkLoginRefusals (b) {
  const page = await newPage(b, 1366, 768);
  await login(page, 'bbt_' + '0'.repeat(64));
  await page.waitForFunction(() => document.getElementById('error').textContent, { timeout: 10000 });
  const err = await page.$eval('#error', (e) => e.textContent);
  check(page.url() === url + '/login' && /not valid/.test(err), 'a wrong token was not refused: ' + err);
  for (const p of ['/ui/overview', '/api/v1/points', '/session', '/ui/shot?vm=web&run=r1'])
    check((await pageFetch(page, p))[0] === 401, p + ' without login is not 401');
  await shoot(page, 'login-refused-1366x768');
  await page.close();
}

async function checkDashboard (page) {
  const text = await page.$eval('#vms', (e) => e.innerText);
  for (const want of ['web', EVIL, 'passed', 'failed'])
    check(text.includes(want), 'the VM table lacks "' + want + '": ' + text);
  const evil = await page.evaluate(() => [document.querySelectorAll('[onerror]').length,
                                          document.querySelectorAll('main script').length]);
  check(evil[0] === 0 && evil[1] === 0, 'guest text became HTML: ' + evil);
  const shot = await page.$eval('#vms img.thumb', (i) => [i.complete, i.naturalWidth, i.getAttribute('src')]);
  check(shot[0] && shot[1] > 0, 'the screenshot thumbnail did not load: ' + shot);
  for (const c of ['#rto-chart canvas', '#usage-chart canvas'])
    check(await page.$(c), 'no chart ' + c);
  const pts = await page.$eval('#points-range', (e) => e.textContent);
  check(pts === '1-5 of 5', 'the points pager says ' + pts);
  const sess = await page.$eval('#sessions', (e) => e.innerText);
  check(sess.includes('rescue') && sess.includes('running'), 'no running session: ' + sess);
  const labs = await page.$eval('#labs', (e) => e.innerText);
  check(labs.includes('sandbox') && /h \d+ min left|min left/.test(labs), 'no sandbox with its lease: ' + labs);
  const runs = await page.$eval('#runs', (e) => e.innerText);
  check(runs.includes('report'), 'no report link in the lab runs: ' + runs);
  const report = await page.$eval('#runs a', (a) => a.getAttribute('href'));
  const r = await pageFetch(page, report);
  check(r[0] === 200 && r[1].includes('lab report') && /sandbox/.test(r[2]),
        'the report ' + report + ': ' + r[0] + ' csp ' + r[2]);
}

// Stop: a confirm, then POST /api/v1/jobs with the CSRF token; the job cell
// shows the answer (a job's state, or the error text).
async function checkStop (page, csrf) {
  const sent = [];
  page.on('request', (q) => { if (q.url().endsWith('/api/v1/jobs')) sent.push(q.headers()); });
  await page.click('#sessions button.danger');
  await page.waitForFunction(() => {
    const c = document.querySelector('#sessions td.job');
    return c && c.textContent && c.textContent !== 'sending...';
  }, { timeout: 20000 });
  const cell = await page.$eval('#sessions td.job', (c) => c.textContent);
  check(sent.length === 1 && sent[0]['x-csrf-token'] === csrf,
        'the stop request did not carry the X-CSRF-Token: ' + JSON.stringify(sent));
  check(page.dialogs.length === 1 && page.dialogs[0].startsWith('confirm'), 'dialogs: ' + page.dialogs);
  return cell;
}

// Verify now on VM's row: a real verify job, followed to its end; the row
// (drawn again from the overview) then shows the job and the new verdict.
async function checkVerify (page, vm) {
  const row = '#vms tr[data-vm="' + vm + '"]';
  await page.click(row + ' button.verify');
  await page.waitForFunction((r) => {
    const c = document.querySelector(r + ' td.job');
    return c && (c.dataset.state === 'done' || c.dataset.state === 'failed');
  }, { timeout: 300000 }, row);
  await page.waitForFunction((r) => /passed|failed/.test(document.querySelector(r + ' td:nth-child(4)').textContent),
                             { timeout: 20000 }, row);
  return page.$eval(row, (tr) => ({ job: tr.querySelector('td.job').textContent,
                                    verdict: tr.querySelector('td:nth-child(4)').textContent }));
}

// The jobs API (POST /api/v1/jobs, GET /api/v1/jobs/ID) answered here, as
// its contract says: the page shows the state, the progress and the error
// text (as text).
async function checkJobProgress (page) {
  const answers = [
    { id: 7, action: 'migrate', state: 'running', progress: { done: 3, total: 10, phase: 'copying' } },
    { id: 7, action: 'migrate', state: 'failed', progress: { done: 3, total: 10, phase: 'copying' },
      error: 'no space left on <b>/srv</b>' },
  ];
  const posted = [];
  await page.setRequestInterception(true);
  const answer = (q) => {
    if (!/\/api\/v1\/jobs/.test(q.url())) return q.continue();
    if (q.method() === 'POST') {
      posted.push(JSON.parse(q.postData()));
      return q.respond({ status: 202, contentType: 'application/json',
                         body: JSON.stringify({ id: 7, href: '/api/v1/jobs/7' }) });
    }
    q.respond({ status: 200, contentType: 'application/json',
                body: JSON.stringify(answers.length > 1 ? answers.shift() : answers[0]) });
  };
  page.on('request', answer);
  await page.type('#sessions td.actions input', '/srv/vm-disks');
  await page.click('#sessions td.actions button:not(.danger)');
  await page.waitForFunction(() => document.querySelector('#sessions td.job').dataset.state === 'running');
  const running = await page.$eval('#sessions td.job', (c) => c.textContent);
  check(running === 'migrate running copying 3/10', 'a running job shows ' + running);
  await page.waitForFunction(() => document.querySelector('#sessions td.job').dataset.state === 'failed');
  const failed = await page.$eval('#sessions td.job', (c) => [c.textContent, c.querySelectorAll('b').length]);
  check(failed[0].includes('no space left on <b>/srv</b>') && failed[1] === 0,
        'a failed job shows ' + failed);
  check(posted.length === 1 && posted[0].action === 'migrate' && posted[0].session === 'rescue' &&
        posted[0].to === '/srv/vm-disks', 'the migrate request: ' + JSON.stringify(posted));
  page.off('request', answer);
  await page.setRequestInterception(false);
  return failed[0];
}

async function checkCsrf (page) {
  const body = JSON.stringify({ action: 'stop', session: 'rescue' });
  const h = { 'Content-Type': 'application/json' };
  let r = await pageFetch(page, '/api/v1/jobs', { method: 'POST', body, headers: h });
  check(r[0] === 403 && r[1].includes('X-CSRF-Token'), 'POST without X-CSRF-Token: ' + r[0] + ' ' + r[1]);
  r = await pageFetch(page, '/api/v1/jobs', { method: 'POST', body,
                                              headers: Object.assign({ 'X-CSRF-Token': 'f'.repeat(64) }, h) });
  check(r[0] === 403, 'POST with a wrong X-CSRF-Token: ' + r[0]);
  r = await pageFetch(page, '/logout', { method: 'POST' });
  check(r[0] === 403, 'logout without X-CSRF-Token: ' + r[0]);
}

async function runCheck () {
  const b = await browser();
  const out = {};
  try {
    await checkLoginRefusals(b);
    const page = await newPage(b, 1366, 768);
    await login(page, token);
    check(page.url() === url + '/', 'after login the page is ' + page.url());
    await ready(page);
    const cookies = await page.cookies();
    const c = cookies.find((x) => x.name === 'bootback_session');
    check(c && c.httpOnly && c.sameSite === 'Strict', 'the session cookie: ' + JSON.stringify(c));
    check(!(await page.evaluate(() => document.cookie)).includes('bootback_session'),
          'the session cookie is readable from script');
    const s = JSON.parse((await pageFetch(page, '/session'))[1]);
    const user = await page.$eval('#user', (e) => e.textContent);
    check(user === 'token ' + s.user + ' (admin)', 'the header says ' + user);
    await checkDashboard(page);
    check(page.dialogs.length === 0, 'a dialog fired: ' + page.dialogs);
    out.shots = [await shoot(page, 'dashboard-1366x768')];
    await page.screenshot({ path: path.join(shots, 'dashboard-1366x768-full.png'), fullPage: true });
    await page.setViewport({ width: 1920, height: 1080 });
    await page.reload({ waitUntil: 'load' });
    await ready(page);
    out.shots.push(await shoot(page, 'dashboard-1920x1080'));
    await page.screenshot({ path: path.join(shots, 'dashboard-1920x1080-full.png'), fullPage: true });
    await checkCsrf(page);
    out.stop = await checkStop(page, s.csrf);
    out.verify = await checkVerify(page, 'tiny');
    await page.$eval('#vms', (e) => e.scrollIntoView());
    out.shots.push(await shoot(page, 'dashboard-verify-1920x1080'));
    await page.$eval('#sessions', (e) => e.scrollIntoView());
    out.shots.push(await shoot(page, 'dashboard-stop-1920x1080'));
    out.job = await checkJobProgress(page);
    out.shots.push(await shoot(page, 'dashboard-job-1920x1080'));
    out.csp = await page.evaluate(() => window.__csp);
    check(out.csp.length === 0, 'CSP violations: ' + out.csp);
    await Promise.all([page.waitForNavigation(), page.click('#logout')]);
    check(page.url() === url + '/login', 'after logout the page is ' + page.url());
    const old = await fetch(url + '/ui/overview', { headers: { Cookie: 'bootback_session=' + c.value } });
    check(old.status === 401, 'the cookie of a session logged out still works: ' + old.status);
    await page.goto(url + '/', { waitUntil: 'load' });
    check(page.url() === url + '/login', 'after logout / is ' + page.url());
  } finally {
    await b.close();
  }
  return out;
}

// A page at 1366x768 logged in with TOKEN, the dashboard loaded.
async function dashboard (b) {
  const page = await newPage(b, 1366, 768);
  await login(page, token);
  await ready(page);
  return page;
}

// Load the dashboard, then page through the points: times in ms.
async function runPerf () {
  const b = await browser();
  try {
    const page = await dashboard(b);
    const loads = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      await page.reload({ waitUntil: 'load' });
      await ready(page);
      loads.push(Date.now() - t0);
    }
    // the next page, or (one page only) the same page again through the
    // VM filter: from the click to the table rendered
    const flips = [];
    for (let i = 0; i < 20; i++) {
      const n = await page.evaluate(() => Number(document.body.dataset.pointsRenders));
      const t0 = Date.now();
      if (await page.$eval('#points-next', (b) => !b.disabled))
        await page.click('#points-next');
      else
        await page.$eval('#points-vm', (s) => { s.value = s.value ? '' : 'web';
                                                s.dispatchEvent(new Event('change')); });
      await page.waitForFunction((n) => Number(document.body.dataset.pointsRenders) > n, {}, n);
      flips.push(Date.now() - t0);
    }
    await page.$eval('#points-vm', (s) => { s.value = ''; s.dispatchEvent(new Event('change')); });
    await page.waitForFunction(() => document.body.dataset.pointsPage === '0');
    const n = await page.evaluate(() => Number(document.body.dataset.pointsRenders));
    const t0 = Date.now();
    let last = 0;                 // one page only: no last page to go to
    if (await page.$eval('#points-last', (b) => !b.disabled)) {
      await page.click('#points-last');
      await page.waitForFunction((n) => Number(document.body.dataset.pointsRenders) > n, {}, n);
      last = Date.now() - t0;
    }
    const range = await page.$eval('#points-range', (e) => e.textContent);
    await shoot(page, 'dashboard-perf-1366x768');
    const sorted = (a) => [...a].sort((x, y) => x - y);
    const med = (a) => sorted(a)[Math.floor(a.length / 2)];
    const p95 = (a) => sorted(a)[Math.min(a.length - 1, Math.round(a.length * 0.95) - 1)];
    return { load_median_ms: med(loads), load_max_ms: Math.max(...loads), flip_median_ms: med(flips),
             flip_p95_ms: p95(flips), last_page_ms: last, range };
  } finally {
    await b.close();
  }
}

// A token of role read: the dashboard shows everything, and every button
// that would start a job is disabled with the reason as its title.
async function runRead () {
  const b = await browser();
  try {
    const page = await dashboard(b);
    const user = await page.$eval('#user', (e) => e.textContent);
    check(/^token \S+ \(read\)$/.test(user), 'the header says ' + user);
    const buttons = await page.$$eval('#vms button.verify, #sessions td.actions button',
      (bs) => bs.map((x) => [x.textContent, x.disabled, x.title]));
    check(buttons.length >= 3, 'action buttons: ' + JSON.stringify(buttons));
    for (const [text, disabled, title] of buttons)
      check(disabled && /role is read/.test(title), text + ' is not disabled for a read token');
    await page.$eval('#sessions', (e) => e.scrollIntoView());
    return { buttons: buttons.length, shot: await shoot(page, 'dashboard-read-1366x768') };
  } finally {
    await b.close();
  }
}

({ perf: runPerf, read: runRead }[mode] || runCheck)().then((r) => {
  console.log(JSON.stringify(r));
}).catch((e) => {
  console.error('browser: ' + (e.stack || e.message));
  process.exit(1);
});
