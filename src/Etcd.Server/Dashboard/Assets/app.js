// etcd dashboard: plain JavaScript, no framework, no build step. Everything it shows or changes goes through the
// member's JSON gateway (/v3/...), /health and /metrics with the signed-in user's token, so it can show and do only
// what that user could with etcdctl. Data is only ever put in the page as text (textContent), never as markup.
'use strict';

(() => {
  const PAGE_SIZE = 100;
  const HISTORY_STEP = 10;
  const REFRESH_MS = 2000;
  const CHART_POINTS = 60;

  const $ = (id) => document.getElementById(id);
  const state = {
    token: sessionStorage.getItem('etcd-token') || '',
    user: sessionStorage.getItem('etcd-user') || '',
    authEnabled: false,
    selfId: '',
    timers: [],
    watch: null,
    keys: { prefix: '', pageStarts: [], page: 0, next: null, selected: null, historyRev: 0, hex: false },
    metrics: { last: null, series: {} },
  };

  // ---- bytes, base64 and text -------------------------------------------------------------------------------------

  const enc = new TextEncoder();
  const strict = new TextDecoder('utf-8', { fatal: true });

  function toB64(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }
  function fromB64(b64) {
    const s = atob(b64 || '');
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  const textB64 = (text) => toB64(enc.encode(text));

  // The bytes as text when they are printable UTF-8, else null.
  function asText(bytes) {
    try {
      const t = strict.decode(bytes);
      return /[\u0000-\u0008\u000e-\u001f\u007f]/.test(t) ? null : t;
    } catch {
      return null;
    }
  }
  // A key for display: UTF-8 with anything unprintable as \xNN.
  function showKey(bytes) {
    const t = asText(bytes);
    if (t !== null) return t;
    let s = '';
    for (const b of bytes) s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '\\x' + b.toString(16).padStart(2, '0');
    return s;
  }
  function hexDump(bytes) {
    const lines = [];
    for (let off = 0; off < bytes.length; off += 16) {
      const row = bytes.subarray(off, off + 16);
      const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
      const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
      lines.push(off.toString(16).padStart(8, '0') + '  ' + hex.padEnd(48) + ' ' + ascii);
    }
    return lines.join('\n');
  }
  // The smallest key after every key starting with prefix (etcd's prefix range end); "\0" (all keys) for no prefix.
  function prefixEnd(bytes) {
    const end = Uint8Array.from(bytes);
    for (let i = end.length - 1; i >= 0; i--) {
      if (end[i] < 0xff) {
        end[i]++;
        return end.subarray(0, i + 1);
      }
    }
    return new Uint8Array([0]);
  }
  const concat = (a, b) => { const r = new Uint8Array(a.length + b.length); r.set(a); r.set(b, a.length); return r; };
  const startsWith = (a, p) => a.length >= p.length && p.every((b, i) => a[i] === b);
  const hexId = (dec) => (dec ? BigInt(dec).toString(16) : '0');
  function bytesSize(n) {
    n = Number(n || 0);
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
    return (u === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[u];
  }

  // ---- the gateway ------------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, code) { super(message); this.code = code; }
  }

  function headers() {
    const h = { 'Content-Type': 'application/json' };
    if (state.token) h.Authorization = state.token;
    return h;
  }

  // POST base + /v3 + path with body; the parsed answer, or an ApiError with etcd's message.
  async function api(path, body, base = '', signal = undefined) {
    let res;
    try {
      res = await fetch(base + '/v3' + path, { method: 'POST', headers: headers(), body: JSON.stringify(body || {}), signal, cache: 'no-store' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError('unreachable (' + e.message + ')', -1);
    }
    const text = await res.text();
    let json = {};
    try { json = text ? JSON.parse(text) : {}; } catch { json = { error: text.trim() || res.statusText }; }
    if (!res.ok || json.error) {
      const msg = json.error || json.message || res.statusText;
      if (/invalid auth token|user name is empty/.test(msg) && state.authEnabled) expireSession(msg);
      throw new ApiError(msg, json.code);
    }
    return json;
  }

  // A streaming gateway call (watch, snapshot): calls onResult for each {"result": ...} line until the stream ends.
  async function stream(path, body, onResult, signal) {
    const res = await fetch('/v3' + path, { method: 'POST', headers: headers(), body: JSON.stringify(body), signal, cache: 'no-store' });
    if (!res.ok) {
      const text = await res.text();
      let msg = text;
      try {
        // Unary errors are {"error": "...", "message": ...}; stream errors {"error": {"message": ..., "grpc_code": ...}}.
        const j = JSON.parse(text.split('\n')[0]);
        const err = j.error && typeof j.error === 'object' ? j.error : j;
        msg = String(err.message || err.error || text);
      } catch { /* plain text */ }
      throw new ApiError(msg.trim() || res.statusText, res.status);
    }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.error) throw new ApiError(msg.error.message || msg.error.error || JSON.stringify(msg.error), msg.error.code);
        onResult(msg.result || {});
      }
    }
    if (buf.trim()) {
      const msg = JSON.parse(buf);
      if (msg.error) throw new ApiError(msg.error.message || msg.error.error || JSON.stringify(msg.error), msg.error.code);
      onResult(msg.result || {});
    }
  }

  // ---- page frame -------------------------------------------------------------------------------------------------

  function notice(text, isError) {
    const n = $('notice');
    n.textContent = (isError ? 'Error: ' : '') + text;
    n.className = 'notice' + (isError ? ' error' : '');
    n.hidden = false;
  }
  const clearNotice = () => { $('notice').hidden = true; };

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  const confirmDialog = $('confirm');
  function confirmAction(text, okLabel = 'Confirm') {
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    return new Promise((resolve) => {
      confirmDialog.addEventListener('close', () => resolve(confirmDialog.returnValue === 'ok'), { once: true });
      confirmDialog.returnValue = 'cancel';
      confirmDialog.showModal();
      $('confirm-cancel').focus();
    });
  }

  function stopTimers() {
    state.timers.forEach(clearInterval);
    state.timers = [];
  }

  function route() {
    stopTimers();
    clearNotice();
    const [page, query] = (location.hash.replace(/^#\/?/, '') || 'keys').split('?');
    const params = new URLSearchParams(query || '');
    if (state.authEnabled && !state.token) {
      show('login');
      return;
    }
    const known = ['keys', 'watch', 'cluster', 'metrics'];
    const name = known.includes(page) ? page : 'keys';
    show(name);
    if (name !== 'watch') stopWatch();
    if (name === 'keys') openKeys(params);
    if (name === 'cluster') { refreshCluster(); state.timers.push(setInterval(refreshCluster, REFRESH_MS)); }
    if (name === 'metrics') { sampleMetrics(); state.timers.push(setInterval(sampleMetrics, REFRESH_MS)); }
  }

  function show(name) {
    document.querySelectorAll('.page').forEach((p) => { p.hidden = p.id !== 'page-' + name; });
    $('nav').hidden = name === 'login';
    document.querySelectorAll('#nav a').forEach((a) => {
      if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    $('session').hidden = !state.authEnabled || !state.token;
    $('session-user').textContent = state.user ? 'Signed in as ' + state.user : '';
    document.title = 'etcd dashboard · ' + name;
  }

  // ---- auth -------------------------------------------------------------------------------------------------------

  async function detectAuth() {
    try {
      const st = await api('/auth/status', {});
      state.authEnabled = !!st.enabled;
    } catch (e) {
      // A member without AuthStatus: auth is on when an anonymous read is refused for want of a user.
      try {
        await api('/kv/range', { key: textB64('\0'), limit: 1, keys_only: true });
        state.authEnabled = false;
      } catch (e2) {
        state.authEnabled = /user name is empty|invalid auth token|permission denied/.test(e2.message);
      }
    }
    if (!state.authEnabled) { state.token = ''; state.user = ''; }
  }

  function expireSession(reason) {
    sessionStorage.removeItem('etcd-token');
    sessionStorage.removeItem('etcd-user');
    state.token = '';
    stopWatch();
    stopTimers();
    show('login');
    $('login-error').textContent = 'Signed out: ' + reason;
    $('login-error').hidden = false;
  }

  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = $('login-name').value;
    const password = $('login-password').value;
    $('login-error').hidden = true;
    try {
      const res = await api('/auth/authenticate', { name, password });
      state.token = res.token;
      state.user = name;
      sessionStorage.setItem('etcd-token', res.token);
      sessionStorage.setItem('etcd-user', name);
      $('login-password').value = '';
      clearNotice();
      route();
    } catch (e) {
      $('login-error').textContent = 'Error: ' + e.message;
      $('login-error').hidden = false;
    }
  });

  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem('etcd-token');
    sessionStorage.removeItem('etcd-user');
    state.token = '';
    state.user = '';
    stopWatch();
    route();
  });

  // ---- key browser ------------------------------------------------------------------------------------------------

  function keysHash(prefix, from) {
    const p = new URLSearchParams();
    if (prefix) p.set('prefix', prefix);
    if (from) p.set('from', from);
    const q = p.toString();
    return '#/keys' + (q ? '?' + q : '');
  }

  function openKeys(params) {
    const prefix = params.get('prefix') || '';
    const from = params.get('from') || '';
    $('keys-prefix').value = prefix;
    $('keys-from').value = from;
    const k = state.keys;
    k.prefix = enc.encode(prefix);
    k.pageStarts = [from ? enc.encode(from) : k.prefix];
    k.page = 0;
    renderCrumbs(prefix);
    loadKeyPage();
    const key = params.get('key');
    if (key !== null) openKey(enc.encode(key));
  }

  function renderCrumbs(prefix) {
    const c = $('keys-crumbs');
    c.textContent = '';
    c.append(el('span', 'Location: '));
    const root = el('a', '(all keys)');
    root.href = keysHash('', '');
    c.append(root);
    let acc = '';
    for (const part of prefix.split('/').filter((p, i, all) => p !== '' || i < all.length - 1)) {
      acc += part + '/';
      if (!prefix.startsWith(acc)) acc = prefix;
      c.append(el('span', ' › '));
      const a = el('a', part === '' ? '/' : part);
      a.href = keysHash(acc, '');
      c.append(a);
    }
    const count = el('span', '', 'muted');
    count.id = 'keys-count';
    c.append(el('span', ' '), count);
  }

  // One page of the prefix tree: up to PAGE_SIZE entries (keys, and "folders" of keys sharing the next '/'-ended
  // segment, each skipped over with one more ranged read), starting at the page's start key.
  async function loadKeyPage() {
    const k = state.keys;
    const list = $('keys-list');
    $('keys-summary').textContent = 'Loading…';
    const end = k.prefix.length ? prefixEnd(k.prefix) : new Uint8Array([0]);
    let cursor = k.pageStarts[k.page];
    const entries = [];
    let more = true;
    try {
      if (k.page === 0) {
        api('/kv/range', { key: toB64(k.prefix.length ? k.prefix : new Uint8Array([0])), range_end: toB64(end), count_only: true })
          .then((r) => { const c = $('keys-count'); const n = Number(r.count || 0); if (c) c.textContent = '(' + n.toLocaleString('en') + (n === 1 ? ' key' : ' keys') + ' under this prefix)'; })
          .catch(() => {});
      }
      const range = (from, limit) => api('/kv/range', { key: toB64(from.length ? from : new Uint8Array([0])), range_end: toB64(end), keys_only: true, limit });
      while (entries.length < PAGE_SIZE) {
        const res = await range(cursor, PAGE_SIZE - entries.length);
        const kvs = res.kvs || [];
        if (!kvs.length) { more = false; break; }
        let skipped = false;
        for (const kv of kvs) {
          const key = fromB64(kv.key);
          const rest = key.subarray(k.prefix.length);
          const slash = rest.indexOf(0x2f);
          if (slash >= 0 && slash < rest.length - 1) {
            // A folder: list it once and skip every key under it.
            const folder = concat(k.prefix, rest.subarray(0, slash + 1));
            entries.push({ folder });
            cursor = prefixEnd(folder);
            skipped = true;
            break;
          }
          entries.push({ key });
          cursor = concat(key, new Uint8Array([0]));
        }
        if (!skipped && !res.more) { more = false; break; }
      }
      if (more) more = ((await range(cursor, 1)).kvs || []).length > 0;
    } catch (e) {
      list.textContent = '';
      $('keys-summary').textContent = '';
      notice(e.message, true);
      return;
    }
    list.textContent = '';
    for (const entry of entries) {
      const li = el('li');
      const b = el('button', null, 'link');
      b.type = 'button';
      if (entry.folder) {
        b.append(el('span', 'folder', 'kind'), document.createTextNode(showKey(entry.folder.subarray(k.prefix.length))));
        b.addEventListener('click', () => { location.hash = keysHash(showKey(entry.folder), ''); });
      } else {
        b.append(el('span', 'key', 'kind'), document.createTextNode(showKey(entry.key.subarray(k.prefix.length)) || '(the prefix itself)'));
        b.dataset.key = showKey(entry.key);
        b.addEventListener('click', () => openKey(entry.key));
      }
      li.append(b);
      list.append(li);
    }
    k.next = more ? cursor : null;
    const first = k.page * PAGE_SIZE + 1;
    $('keys-summary').textContent = entries.length
      ? 'Entries ' + first.toLocaleString('en') + '–' + (first + entries.length - 1).toLocaleString('en') + (more ? ' (more follow)' : ' (end)')
      : 'No keys under this prefix.';
    $('keys-page').textContent = 'Page ' + (k.page + 1);
    $('keys-prev').disabled = k.page === 0;
    $('keys-next').disabled = !more;
  }

  $('keys-next').addEventListener('click', () => {
    const k = state.keys;
    if (!k.next) return;
    k.pageStarts[k.page + 1] = k.next;
    k.page++;
    loadKeyPage();
  });
  $('keys-prev').addEventListener('click', () => {
    const k = state.keys;
    if (k.page === 0) return;
    k.page--;
    loadKeyPage();
  });
  $('keys-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const h = keysHash($('keys-prefix').value, $('keys-from').value);
    if (location.hash === h) route(); else location.hash = h;
  });

  async function openKey(key) {
    const k = state.keys;
    k.selected = key;
    $('key-view').hidden = false;
    $('key-name').textContent = showKey(key);
    $('key-facts').textContent = '';
    $('key-value').textContent = 'Loading…';
    $('key-history').tBodies[0].textContent = '';
    $('key-history-note').textContent = '';
    $('key-history-more').hidden = true;
    let kv;
    try {
      const res = await api('/kv/range', { key: toB64(key) });
      kv = (res.kvs || [])[0];
      if (!kv) {
        $('key-value').textContent = '';
        $('key-facts').append(el('dt', 'State'), el('dd', 'deleted (no such key at revision ' + res.header.revision + ')'));
        return;
      }
    } catch (e) {
      $('key-value').textContent = 'Error: ' + e.message;
      return;
    }
    k.current = kv;
    const facts = $('key-facts');
    const add = (t, v) => facts.append(el('dt', t), el('dd', v));
    add('Create revision', kv.create_revision || '0');
    add('Mod revision', kv.mod_revision || '0');
    add('Version', kv.version || '0');
    const value = fromB64(kv.value);
    add('Size', value.length + ' bytes' + (asText(value) === null && value.length ? ' (binary)' : ''));
    if (kv.lease && kv.lease !== '0') {
      const dd = el('dd', hexId(kv.lease));
      facts.append(el('dt', 'Lease'), dd);
      api('/lease/timetolive', { ID: kv.lease })
        .then((t) => { dd.textContent = hexId(kv.lease) + ' (TTL ' + t.TTL + ' s of ' + t.grantedTTL + ' s)'; })
        .catch(() => {});
    } else {
      add('Lease', 'none');
    }
    $('key-hex').checked = asText(value) === null && value.length > 0;
    renderValue();
    k.historyRev = Number(kv.mod_revision);
    loadHistory();
  }

  function renderValue() {
    const kv = state.keys.current;
    if (!kv) return;
    const value = fromB64(kv.value);
    const text = asText(value);
    $('key-value').textContent = $('key-hex').checked || text === null ? hexDump(value) : text;
  }
  $('key-hex').addEventListener('change', renderValue);

  // Older revisions of the selected key: each read at one revision before the last one shown gives the version before.
  async function loadHistory() {
    const k = state.keys;
    const body = $('key-history').tBodies[0];
    $('key-history-more').hidden = true;
    for (let i = 0; i < HISTORY_STEP && k.historyRev > 0; i++) {
      let kv;
      try {
        const res = await api('/kv/range', { key: toB64(k.selected), revision: String(k.historyRev) });
        kv = (res.kvs || [])[0];
      } catch (e) {
        $('key-history-note').textContent = /compacted/.test(e.message)
          ? 'Revisions before ' + (k.historyRev + 1) + ' are compacted (' + e.message + ').'
          : 'Error: ' + e.message;
        k.historyRev = 0;
        return;
      }
      if (!kv) {
        $('key-history-note').textContent = 'The key did not exist at revision ' + k.historyRev + '.';
        k.historyRev = 0;
        return;
      }
      const value = fromB64(kv.value);
      const text = asText(value);
      const tr = el('tr');
      tr.append(el('td', kv.mod_revision), el('td', kv.version), el('td', text === null ? '(binary) ' + hexDump(value.subarray(0, 16)) : text.length > 200 ? text.slice(0, 200) + '…' : text));
      body.append(tr);
      k.historyRev = Number(kv.mod_revision) - 1;
      if (Number(kv.version) <= 1) {
        $('key-history-note').textContent = 'Version 1 is the first of this generation of the key (created at revision ' + kv.create_revision + ').';
        k.historyRev = 0;
        return;
      }
    }
    $('key-history-more').hidden = k.historyRev <= 0;
  }
  $('key-history-more').addEventListener('click', loadHistory);

  // ---- actions: put, delete ---------------------------------------------------------------------------------------

  function openPut(key, value) {
    $('put-key').value = key || '';
    $('put-value').value = value || '';
    $('put-lease').value = '';
    const d = $('put');
    d.returnValue = 'cancel';
    d.showModal();
  }
  $('keys-put-open').addEventListener('click', () => openPut(new TextDecoder().decode(state.keys.prefix), ''));
  $('key-edit').addEventListener('click', () => {
    const kv = state.keys.current;
    if (!kv) return;
    openPut(showKey(state.keys.selected), asText(fromB64(kv.value)) ?? '');
  });
  $('put').addEventListener('close', async () => {
    if ($('put').returnValue !== 'ok') return;
    const key = $('put-key').value;
    const value = $('put-value').value;
    const lease = $('put-lease').value.trim();
    if (!key) { notice('a key is required', true); return; }
    if (!(await confirmAction('Put key "' + key + '" (' + enc.encode(value).length + ' bytes)' + (lease ? ' with lease ' + lease : '') + '?', 'Put'))) return;
    try {
      const body = { key: textB64(key), value: textB64(value) };
      if (lease) body.lease = BigInt('0x' + lease).toString();
      const res = await api('/kv/put', body);
      notice('Put "' + key + '" at revision ' + res.header.revision + '.');
      loadKeyPage();
      openKey(enc.encode(key));
    } catch (e) {
      notice('put "' + key + '": ' + e.message, true);
    }
  });

  $('key-delete').addEventListener('click', async () => {
    const key = state.keys.selected;
    if (!key) return;
    if (!(await confirmAction('Delete key "' + showKey(key) + '"? This cannot be undone.', 'Delete'))) return;
    try {
      const res = await api('/kv/deleterange', { key: toB64(key) });
      notice('Deleted ' + (res.deleted || 0) + ' key(s) at revision ' + res.header.revision + '.');
      $('key-view').hidden = true;
      state.keys.current = null;
      loadKeyPage();
    } catch (e) {
      notice('delete "' + showKey(key) + '": ' + e.message, true);
    }
  });

  // ---- watch ------------------------------------------------------------------------------------------------------

  function stopWatch() {
    if (state.watch) { state.watch.abort(); state.watch = null; }
    $('watch-start').disabled = false;
    $('watch-stop').disabled = true;
  }

  $('watch-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    stopWatch();
    const prefix = $('watch-prefix').value;
    const from = $('watch-rev').value.trim();
    const key = enc.encode(prefix);
    const req = { key: toB64(key.length ? key : new Uint8Array([0])), range_end: toB64(key.length ? prefixEnd(key) : new Uint8Array([0])), prev_kv: true };
    if (from) req.start_revision = from;
    const ctl = new AbortController();
    state.watch = ctl;
    $('watch-start').disabled = true;
    $('watch-stop').disabled = false;
    const status = $('watch-status');
    status.textContent = 'Connecting…';
    const body = $('watch-events').tBodies[0];
    try {
      await stream('/watch', { create_request: req }, (r) => {
        if (r.created) {
          status.textContent = 'Watching ' + (prefix ? 'prefix "' + prefix + '"' : 'all keys') + ' from revision ' + (from || Number(r.header.revision) + 1) + ' (watch ' + (r.watch_id || '0') + ').';
        }
        if (r.canceled) {
          status.textContent = 'Watch canceled: ' + (r.cancel_reason || (r.compact_revision ? 'revision compacted; oldest available is ' + r.compact_revision : 'by the server'));
        }
        for (const e of r.events || []) {
          const kv = e.kv || {};
          const value = fromB64(kv.value);
          const prev = e.prev_kv ? fromB64(e.prev_kv.value) : null;
          const tr = el('tr');
          tr.dataset.type = e.type || 'PUT';
          tr.append(
            el('td', kv.mod_revision || ''),
            el('td', e.type || 'PUT'),
            el('td', showKey(fromB64(kv.key))),
            el('td', e.type === 'DELETE' ? '' : (asText(value) ?? '(binary, ' + value.length + ' bytes)')),
            el('td', prev === null ? '' : (asText(prev) ?? '(binary, ' + prev.length + ' bytes)')));
          body.prepend(tr);
          while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
        }
      }, ctl.signal);
      if (state.watch === ctl) status.textContent = 'The watch ended.';
    } catch (e) {
      if (e.name !== 'AbortError') status.textContent = 'Error: ' + e.message;
      else status.textContent = 'Stopped.';
    } finally {
      if (state.watch === ctl) stopWatch();
    }
  });
  $('watch-stop').addEventListener('click', () => { stopWatch(); $('watch-status').textContent = 'Stopped.'; });
  $('watch-clear').addEventListener('click', () => { $('watch-events').tBodies[0].textContent = ''; });

  // ---- cluster ----------------------------------------------------------------------------------------------------

  // The base URL to reach member m from this page: this page's own origin for the member serving it.
  const baseOf = (m) => (m.ID === state.selfId ? '' : (m.clientURLs || [])[0] || null);

  async function healthOf(base) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 1500);
    try {
      const res = await fetch(base + '/health', { signal: ctl.signal, cache: 'no-store', headers: state.token ? { Authorization: state.token } : {} });
      const j = await res.json();
      return j.health === 'true' ? 'healthy' : 'unhealthy' + (j.reason ? ' (' + j.reason + ')' : '');
    } catch {
      return 'unreachable';
    } finally {
      clearTimeout(t);
    }
  }

  async function statusOf(base) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), 1500);
    try {
      return await api('/maintenance/status', {}, base, ctl.signal);
    } catch (e) {
      return { error: e.name === 'AbortError' ? 'unreachable (timed out)' : e.message };
    } finally {
      clearTimeout(t);
    }
  }

  let clusterBusy = false;
  async function refreshCluster() {
    if (clusterBusy) return;
    clusterBusy = true;
    try {
      const own = await statusOf('');
      if (own.header) state.selfId = own.header.member_id;
      let list;
      try {
        list = await api('/cluster/member/list', {});
      } catch (e) {
        $('cluster-summary').textContent = 'Error: ' + e.message;
        return;
      }
      const members = (list.members || []).sort((a, b) => (a.name || '').localeCompare(b.name || '') || (a.ID < b.ID ? -1 : 1));
      const rows = await Promise.all(members.map(async (m) => {
        const base = baseOf(m);
        if (base === null) return { m, health: 'no client URL (not started)', status: { error: 'not started' } };
        const [health, status] = await Promise.all([healthOf(base), m.ID === state.selfId ? own : statusOf(base)]);
        return { m, health, status };
      }));
      const leader = own.leader || rows.map((r) => r.status.leader).find((l) => l);
      const body = $('members').tBodies[0];
      body.textContent = '';
      for (const { m, health, status } of rows) {
        const tr = el('tr');
        const down = health !== 'healthy';
        if (down) tr.className = 'down';
        tr.dataset.member = m.name || hexId(m.ID);
        const role = m.isLearner ? 'learner' : m.ID === leader ? 'leader' : 'follower';
        const healthCell = el('td');
        healthCell.append(el('span', health, 'state ' + (down ? 'bad' : 'good')));
        const base = baseOf(m);
        const actions = el('td');
        if (!status.error) {
          const b = el('button', 'Defragment…');
          b.type = 'button';
          b.addEventListener('click', () => defragment(m, base));
          actions.append(b);
        }
        tr.append(
          el('td', (m.name || '(unstarted)') + (m.ID === state.selfId ? ' (this member)' : '')),
          el('td', hexId(m.ID), 'mono'),
          el('td', role),
          healthCell,
          el('td', status.error ? '—' : status.raftTerm || '0'),
          el('td', status.error ? '—' : status.raftIndex || '0'),
          el('td', status.error ? '—' : bytesSize(status.dbSize)),
          el('td', status.error ? '—' : bytesSize(status.dbSizeInUse)),
          el('td', status.error ? status.error : status.version || ''),
          el('td', (m.clientURLs || []).join(', ')),
          actions);
        body.append(tr);
      }
      const healthy = rows.filter((r) => r.health === 'healthy').length;
      $('cluster-summary').textContent = members.length + ' members, ' + healthy + ' healthy' + (leader ? ', leader ' + hexId(leader) : ', no leader') +
        (own.header ? ', revision ' + own.header.revision : '') + ', cluster ' + hexId(list.header.cluster_id) + '.';
      // The current revision is offered as the placeholder (never written into the field the user may be typing in).
      if (own.header) {
        state.revision = own.header.revision;
        $('compact-rev').placeholder = own.header.revision + ' (current)';
      }
      await refreshAlarms();
    } finally {
      clusterBusy = false;
    }
  }

  async function refreshAlarms() {
    const ul = $('alarms');
    let res;
    try {
      res = await api('/maintenance/alarm', { action: 'GET' });
    } catch (e) {
      ul.textContent = '';
      ul.append(el('li', 'Error: ' + e.message, 'error'));
      return;
    }
    ul.textContent = '';
    const alarms = res.alarms || [];
    if (!alarms.length) ul.append(el('li', 'No alarms.'));
    for (const a of alarms) {
      const li = el('li');
      li.append(el('span', 'ALARM ' + (a.alarm || 'NONE') + ' on member ' + hexId(a.memberID) + ' ', 'state bad'));
      const b = el('button', 'Disarm…');
      b.type = 'button';
      b.addEventListener('click', async () => {
        if (!(await confirmAction('Disarm alarm ' + a.alarm + ' on member ' + hexId(a.memberID) + '?', 'Disarm'))) return;
        try {
          await api('/maintenance/alarm', { action: 'DEACTIVATE', memberID: a.memberID, alarm: a.alarm });
          notice('Disarmed ' + a.alarm + ' on member ' + hexId(a.memberID) + '.');
          refreshAlarms();
        } catch (e) {
          notice('disarm ' + a.alarm + ': ' + e.message, true);
        }
      });
      li.append(b);
      ul.append(li);
    }
  }

  async function defragment(m, base) {
    if (!(await confirmAction('Defragment member ' + (m.name || hexId(m.ID)) + '? It blocks reads and writes on that member while it runs.', 'Defragment'))) return;
    try {
      await api('/maintenance/defragment', {}, base);
      notice('Defragmented member ' + (m.name || hexId(m.ID)) + '.');
      refreshCluster();
    } catch (e) {
      notice('defragment ' + (m.name || hexId(m.ID)) + ': ' + e.message, true);
    }
  }

  $('compact-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const rev = $('compact-rev').value.trim() || String(state.revision || '');
    const physical = $('compact-physical').checked;
    if (!/^\d+$/.test(rev)) { notice('the revision must be a number', true); return; }
    if (!(await confirmAction('Compact the key history up to revision ' + rev + (physical ? ' (physical)' : '') + '? Older revisions are lost.', 'Compact'))) return;
    try {
      await api('/kv/compaction', { revision: rev, physical });
      notice('Compacted up to revision ' + rev + '.');
    } catch (e) {
      notice('compact: ' + e.message, true);
    }
  });

  $('snapshot').addEventListener('click', async () => {
    if (!(await confirmAction('Download a snapshot of this member\'s database?', 'Download'))) return;
    const st = $('snapshot-status');
    st.textContent = 'Receiving…';
    const parts = [];
    let total = 0;
    try {
      await stream('/maintenance/snapshot', {}, (r) => {
        if (r.blob) { const b = fromB64(r.blob); parts.push(b); total += b.length; st.textContent = 'Received ' + bytesSize(total) + '…'; }
      });
    } catch (e) {
      st.textContent = '';
      notice('snapshot: ' + e.message, true);
      return;
    }
    const url = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
    const a = el('a', 'snapshot.db');
    a.href = url;
    a.download = 'etcd-snapshot-' + new Date().toISOString().replace(/[:.]/g, '-') + '.db';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    st.textContent = 'Snapshot downloaded (' + bytesSize(total) + ').';
  });

  // ---- metrics ----------------------------------------------------------------------------------------------------

  // Prometheus text exposition: name{labels} value lines; returns a map name -> sum over its series.
  function parseMetrics(text) {
    const sums = new Map();
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const v = Number(m[3]);
      if (!Number.isFinite(v)) continue;
      sums.set(m[1], (sums.get(m[1]) || 0) + v);
    }
    return sums;
  }

  const CHARTS = [
    { id: 'requests', title: 'Request rate', unit: 'requests/s', series: [
      { label: 'gRPC requests handled', rate: 'grpc_server_handled_total' },
      { label: 'proposals applied', rate: 'etcd_server_proposals_applied_total' }] },
    { id: 'latency', title: 'Disk latency', unit: 'ms (average per interval)', series: [
      { label: 'WAL fsync', avg: 'etcd_disk_wal_fsync_duration_seconds' },
      { label: 'backend commit', avg: 'etcd_disk_backend_commit_duration_seconds' }] },
    { id: 'dbsize', title: 'Database size', unit: 'MiB', series: [
      { label: 'total', gauge: 'etcd_mvcc_db_total_size_in_bytes', scale: 1 / 1048576 },
      { label: 'in use', gauge: 'etcd_mvcc_db_total_size_in_use_in_bytes', scale: 1 / 1048576 }] },
  ];

  async function sampleMetrics() {
    let text;
    try {
      const res = await fetch('/metrics', { cache: 'no-store', headers: state.token ? { Authorization: state.token } : {} });
      if (!res.ok) throw new Error(res.status + ' ' + res.statusText);
      text = await res.text();
    } catch (e) {
      notice('metrics: ' + e.message, true);
      return;
    }
    const now = performance.now();
    const cur = parseMetrics(text);
    const last = state.metrics.last;
    state.metrics.last = { at: now, values: cur };
    for (const chart of CHARTS) {
      chart.series.forEach((s, i) => {
        let v = null;
        if (s.gauge) v = (cur.get(s.gauge) || 0) * (s.scale || 1);
        else if (last && s.rate) v = Math.max(0, (cur.get(s.rate) || 0) - (last.values.get(s.rate) || 0)) / ((now - last.at) / 1000);
        else if (last && s.avg) {
          const dc = (cur.get(s.avg + '_count') || 0) - (last.values.get(s.avg + '_count') || 0);
          const ds = (cur.get(s.avg + '_sum') || 0) - (last.values.get(s.avg + '_sum') || 0);
          v = dc > 0 ? (ds / dc) * 1000 : 0;
        }
        if (v === null) return;
        const key = chart.id + i;
        const arr = state.metrics.series[key] || (state.metrics.series[key] = []);
        arr.push(v);
        if (arr.length > CHART_POINTS) arr.shift();
      });
      drawChart(chart);
    }
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const fmt = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

  function drawChart(chart) {
    let box = $('chart-' + chart.id);
    if (!box) {
      box = el('figure', null, 'chart');
      box.id = 'chart-' + chart.id;
      box.append(el('h3', chart.title + ' (' + chart.unit + ')'));
      const svg = svgEl('svg', { viewBox: '0 0 400 160', role: 'img', 'aria-label': chart.title });
      box.append(svg, el('p', '', 'now'));
      $('charts').append(box);
    }
    const svg = box.querySelector('svg');
    svg.textContent = '';
    const all = chart.series.flatMap((s, i) => state.metrics.series[chart.id + i] || []);
    const max = Math.max(1e-9, ...all) * 1.1;
    const L = 44, R = 396, T = 8, B = 140;
    svg.append(svgEl('line', { x1: L, y1: B, x2: R, y2: B, class: 'axis' }), svgEl('line', { x1: L, y1: T, x2: L, y2: B, class: 'axis' }));
    svg.append(svgEl('text', { x: L - 4, y: T + 8, 'text-anchor': 'end' }, fmt(max)), svgEl('text', { x: L - 4, y: B, 'text-anchor': 'end' }, '0'));
    svg.append(svgEl('text', { x: L, y: B + 14 }, '−' + (CHART_POINTS * REFRESH_MS / 1000) + ' s'), svgEl('text', { x: R, y: B + 14, 'text-anchor': 'end' }, 'now'));
    const readings = [];
    chart.series.forEach((s, i) => {
      const arr = state.metrics.series[chart.id + i] || [];
      if (arr.length) {
        const step = (R - L) / (CHART_POINTS - 1);
        const x0 = R - (arr.length - 1) * step;
        const pts = arr.map((v, j) => (x0 + j * step).toFixed(1) + ',' + (B - (v / max) * (B - T)).toFixed(1)).join(' ');
        const line = svgEl('polyline', { points: pts, class: 'line' + (i ? ' second' : '') });
        line.append(svgEl('title', {}, s.label));
        svg.append(line);
      }
      readings.push(s.label + (i ? ' (dashed)' : ' (solid)') + ': ' + (arr.length ? fmt(arr[arr.length - 1]) : '…'));
    });
    box.querySelector('.now').textContent = readings.join(' · ');
  }

  // The page's Content-Security-Policy lets it fetch from the client URLs the cluster's members had when it was served.
  // A member added since is blocked: reload (at most every 10 s) to be served a policy that names it.
  document.addEventListener('securitypolicyviolation', (e) => {
    if (e.effectiveDirective !== 'connect-src' || !location.hash.startsWith('#/cluster')) return;
    const last = Number(sessionStorage.getItem('etcd-csp-reload') || 0);
    if (Date.now() - last < 10000) return;
    sessionStorage.setItem('etcd-csp-reload', String(Date.now()));
    location.reload();
  });

  // ---- start ------------------------------------------------------------------------------------------------------

  window.addEventListener('hashchange', route);
  (async () => {
    await detectAuth();
    route();
  })();
})();
