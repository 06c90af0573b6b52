// OAuth connections (issue 16): the policy's oauth bindings, on the MCP
// view, each with what agentg holds for it and, for those a person
// authorizes, a Connect button. Connect asks the admin API for an
// authorization URL (POST /v1/oauth/connect), opens it in a new tab, and
// follows the attempt until the authorization server's redirect lands on
// agentg's callback. Never shows a token: the API has none to give.
'use strict';

(() => {
  const view = document.getElementById('mcp');
  if (!view) return;
  const box = document.createElement('div');
  box.id = 'oauth-bindings';
  const title = document.createElement('h3');
  title.textContent = 'OAuth connections';
  const note = document.createElement('p');
  note.className = 'note';
  const list = document.createElement('ol');
  list.className = 'cards';
  box.append(title, note, list);
  view.append(box);

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };

  async function connect(binding, status) {
    status.textContent = 'asking agentg for the authorization URL…';
    let c;
    try {
      c = await api('/v1/oauth/connect', { method: 'POST', body: { binding } });
    } catch (e) {
      status.textContent = 'connect failed: ' + e.message;
      return;
    }
    const link = el('a', 'open the authorization page');
    link.href = c.authorization_url;
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    status.textContent = 'waiting for the authorization; ';
    status.append(link);
    window.open(c.authorization_url, '_blank', 'noopener,noreferrer');
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      let st;
      try {
        st = await api('/v1/oauth/connect/' + encodeURIComponent(c.id));
      } catch (e) {
        status.textContent = 'connect status: ' + e.message;
        return;
      }
      if (st.state === 'completed') { status.textContent = 'connected'; refresh(); return; }
      if (st.state !== 'pending') { status.textContent = st.state + ': ' + (st.error || ''); return; }
    }
  }

  async function refresh() {
    if (!token() || view.hidden) return;
    let data;
    try {
      data = await api('/v1/oauth');
    } catch (e) {
      note.textContent = e.status === 503 ? 'this agentg runs no OAuth broker' : 'OAuth bindings: ' + e.message;
      return;
    }
    const items = (data && data.items) || [];
    note.textContent = items.length ? '' : 'the policy has no oauth bindings';
    list.replaceChildren(...items.map((b) => {
      const li = el('li', undefined, 'card');
      li.append(el('strong', b.binding), el('span', ' ' + b.grant + ' · ' + (b.connected ? 'connected' : 'not connected')));
      if (b.expires) li.append(el('span', ' · expires ' + new Date(b.expires).toLocaleString()));
      if (b.scopes && b.scopes.length) li.append(el('div', 'scopes: ' + b.scopes.join(' ')));
      if (b.issuer) li.append(el('div', 'authorization server: ' + b.issuer));
      if (b.needs_connect) li.append(el('div', 'a call waits on a connect: ' + b.needs_connect, 'error'));
      const status = el('div', '', 'note');
      if (b.grant === 'authorization_code') {
        const btn = el('button', b.connected ? 'Connect again' : 'Connect');
        btn.type = 'button';
        btn.addEventListener('click', () => connect(b.binding, status));
        li.append(btn);
      }
      li.append(status);
      return li;
    }));
  }

  refresh();
  setInterval(refresh, 5000);
  window.addEventListener('hashchange', () => setTimeout(refresh, 0));
})();
