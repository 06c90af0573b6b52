// agentg's web console. It holds no data of its own: every view is read
// from the admin API with the token the person entered, which stays in
// this tab's sessionStorage. Everything an agent or a server chose (hosts,
// tool names, arguments) is put into the page as text nodes, never as
// markup.
'use strict';

const TOKEN_KEY = 'agentg-admin-token';
const MAX_EVENTS = 300;

const $ = (sel) => document.querySelector(sel);

// el builds an element; strings among children become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) e.append(c);
  }
  return e;
}

class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

// api asks the admin API; a refused token signs the person out.
async function api(path, opts = {}) {
  const headers = { Authorization: 'Bearer ' + token() };
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const r = await fetch(path, { method: opts.method || 'GET', headers, body, cache: 'no-store', signal: opts.signal });
  if (r.status === 401) {
    signOut('The token was refused.');
    throw new APIError(401, 'unauthorized', 'the token was refused');
  }
  if (opts.raw) return r;
  let data = null;
  try { data = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const e = (data && data.error) || {};
    throw new APIError(r.status, e.code || '', e.message || r.status + ' ' + r.statusText);
  }
  return data;
}

function note(id, text, isError) {
  const n = $(id);
  n.textContent = text || '';
  n.classList.toggle('error', !!isError);
}

function fmtTime(s) {
  const d = new Date(s);
  return isNaN(d) ? '' : d.toLocaleTimeString([], { hour12: false });
}

// ---- sign in, views -------------------------------------------------

const views = {}; // name -> {show(), hide()}
let current = null;
let signedIn = false;

async function signIn(tok) {
  sessionStorage.setItem(TOKEN_KEY, tok);
  try {
    await api('/healthz');
  } catch (e) {
    if (e.status !== 401) signOut('agentg did not answer: ' + e.message);
    return;
  }
  signedIn = true;
  $('#login').hidden = true;
  $('#nav').hidden = false;
  events.start();
  approvals.start();
  route();
}

function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  signedIn = false;
  events.stop();
  approvals.stop();
  if (current) views[current].hide();
  current = null;
  for (const v of document.querySelectorAll('.view')) v.hidden = true;
  $('#nav').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = why || '';
  $('#token').value = '';
}

function route() {
  if (!signedIn) return;
  let name = location.hash.slice(1);
  if (!views[name]) name = 'events';
  if (current && current !== name) views[current].hide();
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== name;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === name);
  if (current !== name) {
    current = name;
    views[name].show();
  }
}

// poller calls fn now and every ms while started; fn returns a delay to
// use instead once (a slower retry).
function poller(fn, ms) {
  let timer = null;
  let on = false;
  const tick = async () => {
    timer = null;
    let next = ms;
    try { next = (await fn()) || ms; } catch (_) { /* fn reports its own errors */ }
    if (on) timer = setTimeout(tick, next);
  };
  return {
    start() { if (!on) { on = true; tick(); } },
    stop() { on = false; if (timer) clearTimeout(timer); timer = null; },
    now() { if (on) { if (timer) clearTimeout(timer); tick(); } },
  };
}

// ---- live events ------------------------------------------------------

const events = (() => {
  let ctrl = null;
  let retry = null;

  function filterQuery() {
    const f = new FormData($('#events-filter'));
    const q = new URLSearchParams();
    for (const k of ['agent', 'kind', 'decision']) {
      const v = String(f.get(k) || '').trim();
      if (v) q.set(k, v);
    }
    return q.toString();
  }

  function status(s) { $('#events-status').textContent = s; }

  function what(e) {
    if (e.kind === 'mcp') {
      const name = e.tool || e.prompt || e.uri || e.action || e.method || '';
      return (e.server || e.host || '?') + (name ? ' · ' + name : '');
    }
    if (e.kind === 'dns') return e.host;
    let u = (e.scheme && e.scheme !== 'tunnel' ? e.scheme + '://' : '') + e.host + (e.port ? ':' + e.port : '') + (e.path || '');
    return (e.method ? e.method + ' ' : '') + u;
  }

  function add(e) {
    const li = el('li', { class: 'card ev ' + (e.decision || ''), 'data-kind': e.kind, 'data-decision': e.decision },
      el('div', { class: 'row' },
        el('span', { class: 'badge ' + (e.decision || '') }, e.decision || '?'),
        el('span', { class: 'kind' }, e.kind || ''),
        el('span', { class: 'what' }, what(e)),
        el('time', { datetime: e.time }, fmtTime(e.time))),
      el('div', { class: 'row meta' },
        el('span', {}, 'agent ', el('b', {}, e.agent || '')),
        el('span', {}, 'rule ', el('b', { class: 'rule' }, e.rule || '')),
        e.status ? el('span', {}, 'status ', el('b', {}, String(e.status))) : null,
        e.pin ? el('span', {}, 'pin ', el('b', {}, e.pin)) : null,
        e.llm_turn ? el('span', {}, 'model turn ', el('b', {}, e.llm_turn)) : null,
        e.unrequested ? el('span', { class: 'badge deny' }, 'unrequested') : null),
      e.args ? el('pre', { class: 'args' }, e.args) : null,
      e.turn_reasoning ? el('div', { class: 'reason' }, 'reasoning: ' + e.turn_reasoning) : null,
      e.turn_text ? el('div', { class: 'reason' }, 'model said: ' + e.turn_text) : null,
      e.reason ? el('div', { class: 'reason' }, e.reason) : null,
      e.error ? el('div', { class: 'reason error' }, e.error) : null);
    const list = $('#events-list');
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  }

  function frame(text) {
    let type = 'message';
    const data = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    let v;
    try { v = JSON.parse(data.join('\n')); } catch (_) { return; }
    if (type === 'decision') add(v);
    else if (type === 'dropped') note('#events-note', 'This view read too slowly: ' + v.dropped + ' events were missed.');
  }

  // run reads the stream with fetch: EventSource cannot send the token.
  async function run() {
    retry = null;
    ctrl = new AbortController();
    const mine = ctrl;
    status('connecting…');
    try {
      const r = await api('/v1/events?' + filterQuery(), { raw: true, signal: mine.signal });
      if (!r.ok) {
        let msg = r.status + ' ' + r.statusText;
        try { msg = (await r.json()).error.message; } catch (_) { /* keep the status */ }
        note('#events-note', msg, true);
      } else {
        note('#events-note', '');
        status('live');
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf = (buf + value).replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            frame(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      }
    } catch (e) {
      if (mine.signal.aborted || e.status === 401) return;
    }
    if (mine !== ctrl || !signedIn) return;
    status('reconnecting…');
    retry = setTimeout(run, 2000);
  }

  function stop() {
    if (ctrl) ctrl.abort();
    ctrl = null;
    if (retry) clearTimeout(retry);
    retry = null;
    status('');
  }

  $('#events-filter').addEventListener('change', () => { if (signedIn) { stop(); run(); } });
  $('#events-filter').addEventListener('submit', (ev) => ev.preventDefault());
  $('#events-clear').addEventListener('click', () => { $('#events-list').textContent = ''; note('#events-note', ''); });
  views.events = { show() {}, hide() {} };
  return { start() { if (!ctrl) run(); }, stop };
})();

// ---- approvals --------------------------------------------------------

const approvals = (() => {
  const cards = new Map(); // id -> li, so that a poll keeps what a person is typing
  const decided = new Set(); // ids decided here, which a poll already under way may still list

  function describe(a) {
    if (a.kind === 'http') return (a.method || '') + ' ' + (a.url || '');
    return (a.server || '?') + ' · ' + (a.tool || '?');
  }

  async function decide(a, li, verb, body) {
    for (const b of li.querySelectorAll('button')) b.disabled = true;
    try {
      await api('/v1/approvals/' + encodeURIComponent(a.id) + '/' + verb, { method: 'POST', body });
      li.remove();
      cards.delete(a.id);
      decided.add(a.id);
      note('#approvals-note', (verb === 'approve' ? 'Approved ' : 'Denied ') + describe(a) + '.');
      count();
    } catch (e) {
      note('#approvals-note', verb + ' failed: ' + e.message, true);
      for (const b of li.querySelectorAll('button')) b.disabled = false;
    }
  }

  // The held request's body as agentg previews it (bounded, redacted);
  // text nodes only, never markup.
  function bodyView(a) {
    if (!a.body_size) return el('div', { class: 'row meta' }, el('span', {}, 'no body'));
    return el('div', { class: 'body' },
      el('div', { class: 'row meta' },
        el('span', {}, 'body ', el('b', {}, String(a.body_size) + ' bytes')),
        a.body_sha256 ? el('span', {}, 'sha256 ', el('code', {}, String(a.body_sha256).slice(0, 16))) : null,
        a.body_encoding ? el('span', {}, 'shown decoded from ', el('b', {}, String(a.body_encoding))) : null,
        a.body_truncated ? el('span', { class: 'truncated' }, 'preview truncated: the first 4 KiB are shown') : null),
      el('pre', { class: 'args body' }, String(a.body || '')));
  }

  function card(a) {
    const scope = el('select', { name: 'scope', 'aria-label': 'remember' },
      el('option', { value: 'call' }, 'this call only'),
      el('option', { value: 'agent-tool' }, 'this agent + ' + (a.kind === 'http' ? 'request' : 'tool') + ' for'));
    const mins = el('input', { name: 'minutes', type: 'number', min: '1', max: '1440', value: '10', 'aria-label': 'minutes', class: 'mins', hidden: true });
    const unit = el('span', { class: 'unit', hidden: true }, 'min');
    scope.addEventListener('change', () => { mins.hidden = unit.hidden = scope.value !== 'agent-tool'; });
    const reason = el('input', { name: 'reason', placeholder: 'reason (optional)', 'aria-label': 'reason' });
    const li = el('li', { class: 'card approval', 'data-id': a.id },
      el('div', { class: 'row' },
        el('span', { class: 'badge pending' }, a.kind || '?'),
        el('span', { class: 'what' }, describe(a)),
        el('time', { datetime: a.created }, fmtTime(a.created))),
      el('div', { class: 'row meta' },
        el('span', {}, 'agent ', el('b', {}, a.agent || '')),
        el('span', {}, 'rule ', el('b', {}, a.rule || '')),
        a.expires ? el('span', {}, 'expires ', el('b', {}, fmtTime(a.expires))) : null,
        a.via && a.via.length ? el('span', {}, 'via ', el('b', {}, a.via.join(', '))) : null),
      a.args !== undefined && a.args !== null && a.args !== ''
        ? el('pre', { class: 'args' }, typeof a.args === 'string' ? a.args : JSON.stringify(a.args, null, 2)) : null,
      a.kind === 'http' ? bodyView(a) : null,
      el('div', { class: 'row actions' },
        scope, mins, unit,
        el('button', { type: 'button', class: 'approve', onclick: () => {
          const body = { scope: scope.value };
          if (scope.value === 'agent-tool') body.for = Math.max(1, parseInt(mins.value, 10) || 10) + 'm';
          decide(a, li, 'approve', body);
        } }, 'Approve')),
      el('div', { class: 'row actions' },
        reason,
        el('button', { type: 'button', class: 'deny', onclick: () => decide(a, li, 'deny', { reason: reason.value }) }, 'Deny')));
    return li;
  }

  function count() {
    const c = $('#approvals-count');
    c.textContent = String(cards.size);
    c.hidden = cards.size === 0;
  }

  async function poll() {
    let data;
    try {
      data = await api('/v1/approvals');
    } catch (e) {
      if (e.status === 404) {
        note('#approvals-note', 'Approvals are not available in this agentg.');
        for (const li of cards.values()) li.remove();
        cards.clear();
        count();
        return 30000;
      }
      note('#approvals-note', 'Could not read the approvals: ' + e.message, true);
      return 5000;
    }
    const items = (data && data.items) || [];
    const seen = new Set();
    const list = $('#approvals-list');
    const listed = new Set(items.map((a) => a.id));
    for (const id of decided) if (!listed.has(id)) decided.delete(id);
    for (const a of items) {
      if (a.state && a.state !== 'pending' || decided.has(a.id)) continue;
      seen.add(a.id);
      if (!cards.has(a.id)) {
        const li = card(a);
        cards.set(a.id, li);
        list.append(li);
      }
    }
    for (const [id, li] of cards) {
      if (!seen.has(id)) { li.remove(); cards.delete(id); }
    }
    if ($('#approvals-note').classList.contains('error') || !cards.size) {
      note('#approvals-note', cards.size ? '' : 'Nothing is waiting for a decision.');
    }
    count();
  }

  const p = poller(poll, 2000);
  views.approvals = { show() { p.now(); }, hide() {} };
  return { start: p.start, stop: p.stop };
})();

// ---- MCP inventory and pins -------------------------------------------

(() => {
  let last = '';

  async function accept(server, tool, btn) {
    btn.disabled = true;
    try {
      await api('/v1/mcp/pins/accept', { method: 'POST', body: { server, tool } });
      note('#mcp-note', 'Accepted the new definition of ' + server + ' · ' + tool + '.');
      last = '';
      p.now();
    } catch (e) {
      note('#mcp-note', 'Accept failed: ' + e.message, true);
      btn.disabled = false;
    }
  }

  function render(inv, pins) {
    const prev = new Map(pins.map((p) => [p.server + '\u0000' + p.tool, p]));
    const box = $('#mcp-servers');
    box.textContent = '';
    if (!inv.servers.length) {
      box.append(el('p', { class: 'note' }, 'No MCP server seen yet.'));
      return;
    }
    for (const s of inv.servers) {
      const rows = (s.tools || []).map((t) => {
        const pin = prev.get(s.name + '\u0000' + t.name);
        const changed = !t.accepted;
        return el('tr', { class: changed ? 'changed' : '', 'data-tool': t.name },
          el('td', {}, t.name),
          el('td', { class: 'num' }, String(t.calls || 0)),
          el('td', {}, changed ? el('b', { class: 'badge deny' }, 'changed') : (t.changed ? 'accepted change' : 'pinned'),
            ' ', el('code', { title: t.sha256 }, (t.sha256 || '').slice(0, 12)),
            changed && pin && pin.previous_sha256 ? el('span', { class: 'was' }, ' was ', el('code', { title: pin.previous_sha256 }, pin.previous_sha256.slice(0, 12))) : null),
          el('td', {}, changed ? el('button', { type: 'button', class: 'accept', onclick: (ev) => accept(s.name, t.name, ev.currentTarget) }, 'Accept') : null));
      });
      box.append(el('article', { class: 'server', 'data-server': s.name },
        el('h3', {}, s.name, s.server_info && s.server_info.name
          ? el('small', {}, ' ' + s.server_info.name + (s.server_info.version ? ' ' + s.server_info.version : '')) : null),
        el('div', { class: 'row meta' },
          el('span', {}, (s.urls || []).join(' ')),
          s.revisions && s.revisions.length ? el('span', {}, 'revisions ', el('b', {}, s.revisions.join(', '))) : null,
          el('span', {}, 'last seen ', el('b', {}, fmtTime(s.last_seen))),
          s.unlisted_calls ? el('span', { class: 'error' }, s.unlisted_calls + ' calls to unlisted tools') : null),
        el('div', { class: 'scroll' }, el('table', {},
          el('thead', {}, el('tr', {}, el('th', {}, 'tool'), el('th', { class: 'num' }, 'calls'), el('th', {}, 'definition'), el('th', {}))),
          el('tbody', {}, rows)))));
    }
  }

  async function poll() {
    let inv, pins;
    try {
      [inv, pins] = await Promise.all([api('/v1/mcp/inventory'), api('/v1/mcp/pins')]);
    } catch (e) {
      note('#mcp-note', 'Could not read the MCP inventory: ' + e.message, true);
      return 5000;
    }
    if ($('#mcp-note').classList.contains('error')) note('#mcp-note', '');
    const key = JSON.stringify([inv.servers, pins.items]);
    if (key !== last) { // re-render only on change, so that a click lands on the button it aimed at
      last = key;
      render(inv, pins.items || []);
    }
  }

  const p = poller(poll, 3000);
  views.mcp = { show() { last = ''; p.start(); }, hide() { p.stop(); } };
})();

// ---- rules and hits ---------------------------------------------------

(() => {
  async function poll() {
    let data;
    try {
      data = await api('/v1/rules');
    } catch (e) {
      note('#rules-note', 'Could not read the rules: ' + e.message, true);
      return 5000;
    }
    note('#rules-note', '');
    const body = $('#rules-table tbody');
    body.textContent = '';
    for (const r of data.items || []) {
      body.append(el('tr', { 'data-rule': r.id, class: r.hits ? '' : 'cold' },
        el('td', {}, el('code', {}, r.id), r.report ? el('span', { class: 'badge report' }, 'report') : null),
        el('td', {}, r.label || '', r.agents && r.agents.length ? el('small', {}, ' agents: ' + r.agents.join(', ')) : null),
        el('td', {}, r.source || ''),
        el('td', { class: 'num hits' }, String(r.hits || 0))));
    }
    const other = $('#rules-other tbody');
    other.textContent = '';
    for (const r of data.other || []) {
      other.append(el('tr', { 'data-rule': r.id }, el('td', {}, el('code', {}, r.id)), el('td', { class: 'num hits' }, String(r.hits))));
    }
  }
  const p = poller(poll, 3000);
  views.rules = { show() { p.start(); }, hide() { p.stop(); } };
})();

// ---- secrets ------------------------------------------------------------

(() => {
  const badge = { held: 'allow', failed: 'deny' };

  function fmtWhen(s) {
    const d = new Date(s);
    return isNaN(d) ? '' : d.toLocaleString([], { hour12: false });
  }

  async function poll() {
    let data;
    try {
      data = await api('/v1/secrets');
    } catch (e) {
      note('#secrets-note', 'Could not read the secrets: ' + e.message, true);
      return 5000;
    }
    const items = (data && data.items) || [];
    note('#secrets-note', items.length ? '' : 'The policy defines no secret.');
    const body = $('#secrets-table tbody');
    body.textContent = '';
    for (const s of items) {
      const bindings = s.bindings || [];
      body.append(el('tr', { 'data-secret': s.name, 'data-state': s.state, class: s.last_use ? '' : 'cold' },
        el('td', {}, el('code', {}, s.name), s.insecure_inline ? el('span', { class: 'badge report', title: 'written in the policy' }, 'inline') : null),
        el('td', {}, s.source || ''),
        el('td', {}, bindings.length ? bindings.join(', ') : el('small', {}, 'no binding')),
        el('td', { class: 'state' }, el('span', { class: 'badge ' + (badge[s.state] || '') }, s.state || '?'),
          s.error ? el('div', { class: 'reason error' }, s.error) : null),
        el('td', { class: 'last-use' }, s.last_use ? el('time', { datetime: s.last_use }, fmtWhen(s.last_use)) : 'never')));
    }
  }
  const p = poller(poll, 3000);
  views.secrets = { show() { p.start(); }, hide() { p.stop(); } };
})();

// ---- start --------------------------------------------------------------

$('#login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const tok = $('#token').value.trim();
  if (tok) signIn(tok);
});
$('#signout').addEventListener('click', () => signOut(''));
window.addEventListener('hashchange', route);
if (token()) signIn(token());
