// The registry view (issue 17): every MCP server the policy configures,
// with its state (connected, last error, auth, tool count, changed pins)
// from GET /v1/mcp/servers, beside the servers seen through the proxy.
// It plugs into console.js (views, api, el, poller, note) and adds its own
// nav link and section, so the page needs only the line that loads it.
// Everything a server or the gateway chose is put in as text, never markup.
'use strict';

(() => {
  const nav = $('#nav');
  nav.insertBefore(el('a', { href: '#servers', 'data-view': 'servers' }, 'Servers'), nav.querySelector('a[data-view="rules"]'));
  const cols = ['server', 'url', 'state', 'auth', 'tools', 'pins changed', 'last seen', 'last error'];
  document.querySelector('main').append(el('section', { id: 'servers', class: 'view', hidden: true },
    el('h2', {}, 'MCP servers'),
    el('p', { id: 'servers-note', class: 'note' }),
    el('div', { class: 'scroll' }, el('table', { id: 'servers-table' },
      el('thead', {}, el('tr', {}, cols.map((c) => el('th', { class: c === 'tools' || c === 'pins changed' ? 'num' : '' }, c)))),
      el('tbody', {}))),
    el('h3', {}, 'Seen through the proxy'),
    el('ul', { id: 'servers-seen', class: 'plain' })));

  const stateClass = { connected: 'allow', error: 'deny', disconnected: 'report' };

  function render(reg) {
    const body = $('#servers-table tbody');
    body.textContent = '';
    for (const s of reg.items || []) {
      const pins = String(s.pins_changed || 0) + (s.pins_changed_accepted ? ' (+' + s.pins_changed_accepted + ' accepted)' : '');
      body.append(el('tr', { 'data-server': s.name, 'data-state': s.state, class: s.pins_changed ? 'changed' : '' },
        el('td', {}, el('b', {}, s.name)),
        el('td', {}, el('code', {}, s.url || '-'), s.source ? el('small', {}, ' ' + s.source) : null),
        el('td', { class: 'state' }, el('span', { class: 'badge ' + (stateClass[s.state] || '') }, s.state)),
        el('td', { class: 'auth' }, s.auth || 'none'),
        el('td', { class: 'num tools' }, String(s.tools || 0)),
        el('td', { class: 'num pins' }, s.pins_changed ? el('b', { class: 'badge deny' }, pins) : pins),
        el('td', {}, s.last_seen ? fmtTime(s.last_seen) : 'never'),
        el('td', { class: 'error' }, s.last_error || '')));
    }
    if (!(reg.items || []).length) body.append(el('tr', {}, el('td', { colspan: cols.length }, 'The policy configures no MCP server (mcp: servers:).')));
    const seen = $('#servers-seen');
    seen.textContent = '';
    const inv = (reg.inventory && reg.inventory.servers) || [];
    for (const s of inv) {
      seen.append(el('li', { 'data-seen': s.name }, el('b', {}, s.name), ' ', (s.urls || []).join(' '),
        ' · ' + (s.tools || []).length + ' tools · last seen ' + fmtTime(s.last_seen)));
    }
    if (!inv.length) seen.append(el('li', {}, 'No MCP server seen through the proxy yet.'));
  }

  let last = '';
  async function poll() {
    let reg;
    try {
      reg = await api('/v1/mcp/servers');
    } catch (e) {
      note('#servers-note', 'Could not read the registry: ' + e.message, true);
      return 5000;
    }
    note('#servers-note', '');
    const key = JSON.stringify(reg);
    if (key !== last) {
      last = key;
      render(reg);
    }
  }
  const p = poller(poll, 3000);
  views.servers = { show() { last = ''; p.start(); }, hide() { p.stop(); } };
})();
