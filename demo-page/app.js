/*
 * sockeye demo page: plain browser JavaScript, no build step, no framework.
 *
 * Four WebSockets to the origin this page came from (ws:// for http://,
 * wss:// for https://), one per libwebsockets test protocol:
 *   dumb-increment-protocol  the counter (reset\n, closeme\n)
 *   lws-mirror-protocol      the shared canvas (`c #RRGGBB x y r;` commands)
 *   lws-status               the connection list (JSON)
 *   (none)                   the echo service, for the bulk test
 *
 * The page's state is mirrored on window.__demo so that tests (and curious
 * people with a console) can read what the page saw.
 */
/* global window, document, location */
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const wsBase = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
  $('endpoint').textContent = wsBase;

  const demo = {
    wsBase,
    counter: { state: 'connecting', value: null, received: 0, drops: 0, closeCode: null, closeReason: null },
    mirror: { state: 'connecting', group: '', sent: 0, messages: 0, commands: 0 },
    status: { state: 'connecting', received: 0, version: null, hostname: null, wssOverH2: false, conns: [] },
    echo: { state: 'connecting', running: false, runs: 0, results: [], lastRun: null },
  };
  window.__demo = demo;

  /** Shows a channel's state in its pill; the text says the close code and reason when there is one. */
  function showState(pillId, model, state, detail) {
    model.state = state;
    const pill = $(pillId);
    pill.dataset.state = state;
    pill.textContent = detail ? state + ' · ' + detail : state;
  }

  function closeDetail(ev) {
    return String(ev.code) + (ev.reason ? ' ' + ev.reason : '');
  }

  // ------------------------------------------------------------------ counter

  const counter = demo.counter;
  let counterWs = null;

  function connectCounter() {
    counter.value = null;
    counter.received = 0;
    counter.drops = 0;
    counter.closeCode = null;
    counter.closeReason = null;
    $('counter-value').textContent = '–';
    $('counter-reconnect').hidden = true;
    showState('counter-state', counter, 'connecting');
    const ws = new WebSocket(wsBase, 'dumb-increment-protocol');
    counterWs = ws;
    ws.onopen = () => {
      showState('counter-state', counter, 'open');
      $('counter-reset').disabled = false;
      $('counter-close').disabled = false;
      $('counter-note').innerHTML = 'sends <code>reset\\n</code> and <code>closeme\\n</code>';
    };
    ws.onmessage = (ev) => {
      const n = Number(ev.data);
      counter.received++;
      // The counter only goes up, except when the server honours a reset.
      if (counter.value !== null && n < counter.value) counter.drops++;
      counter.value = n;
      $('counter-value').textContent = String(ev.data);
    };
    ws.onclose = (ev) => {
      if (counterWs !== ws) return;
      counter.closeCode = ev.code;
      counter.closeReason = ev.reason;
      showState('counter-state', counter, 'closed', closeDetail(ev));
      $('counter-reset').disabled = true;
      $('counter-close').disabled = true;
      $('counter-reconnect').hidden = false;
      $('counter-note').textContent = ev.code === 1001 && ev.reason === 'seeya'
        ? 'the server said goodbye (1001 "seeya"), as asked'
        : 'connection closed (' + closeDetail(ev) + ')';
    };
  }

  $('counter-reset').addEventListener('click', () => {
    if (counterWs && counterWs.readyState === WebSocket.OPEN) counterWs.send('reset\n');
  });
  $('counter-close').addEventListener('click', () => {
    if (counterWs && counterWs.readyState === WebSocket.OPEN) counterWs.send('closeme\n');
  });
  $('counter-reconnect').addEventListener('click', connectCounter);

  // ------------------------------------------------------------------- mirror

  const mirror = demo.mirror;
  const params = new URLSearchParams(location.search);
  mirror.group = params.get('mirror') || '';
  $('mirror-group').value = mirror.group;
  const canvas = $('mirror-canvas');
  const ctx = canvas.getContext('2d');
  const PAPER = '#ffffff';
  const COLOR = /^#[0-9a-fA-F]{6}$/;
  let mirrorWs = null;
  // A command split across messages (libwebsockets' server forwards in pieces of up to 4096 bytes) waits here for its end.
  let partial = '';

  function clearCanvas() {
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  clearCanvas();

  function drawCommand(cmd) {
    const f = cmd.trim().split(/\s+/);
    const n = f.slice(2).map(Number);
    if (!COLOR.test(f[1] || '') || n.some((v) => !Number.isFinite(v))) return;
    if (f[0] === 'c' && n.length === 3) {
      // A dot: libwebsockets' test client sends these by the thousand.
      ctx.fillStyle = f[1];
      ctx.beginPath();
      ctx.arc(n[0], n[1], Math.min(Math.abs(n[2]), 200), 0, 2 * Math.PI);
      ctx.fill();
    } else if (f[0] === 'd' && n.length === 4) {
      // A line segment, as libwebsockets' own test page draws.
      ctx.strokeStyle = f[1];
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(n[0], n[1]);
      ctx.lineTo(n[2], n[3]);
      ctx.stroke();
    } else {
      return;
    }
    mirror.commands++;
  }

  function showMirrorStats() {
    $('mirror-stats').textContent = mirror.sent + ' sent · ' + mirror.commands + ' drawn';
  }

  let statsPending = false;
  function onMirrorMessage(ev) {
    mirror.messages++;
    const text = partial + (typeof ev.data === 'string' ? ev.data : new TextDecoder().decode(ev.data));
    const parts = text.split(';');
    partial = parts.pop();
    if (partial.length > 4096) partial = ''; // not a drawing command: do not grow without bound
    for (const cmd of parts) drawCommand(cmd);
    if (!statsPending) {
      statsPending = true;
      setTimeout(() => { statsPending = false; showMirrorStats(); }, 100);
    }
  }

  function connectMirror() {
    partial = '';
    showState('mirror-state', mirror, 'connecting');
    const ws = new WebSocket(wsBase + (mirror.group ? '?mirror=' + encodeURIComponent(mirror.group) : ''), 'lws-mirror-protocol');
    ws.binaryType = 'arraybuffer';
    mirrorWs = ws;
    ws.onopen = () => showState('mirror-state', mirror, 'open', mirror.group ? 'group ' + mirror.group : 'default group');
    ws.onmessage = onMirrorMessage;
    ws.onclose = (ev) => {
      if (mirrorWs === ws) showState('mirror-state', mirror, 'closed', closeDetail(ev));
    };
  }

  // Drawing: every pointer move becomes a run of dots from the last point, sent as one message and drawn when it comes back.
  let last = null;
  function canvasPoint(ev) {
    const r = canvas.getBoundingClientRect();
    return {
      x: Math.round(((ev.clientX - r.left) * canvas.width) / r.width),
      y: Math.round(((ev.clientY - r.top) * canvas.height) / r.height),
    };
  }
  function stroke(to) {
    if (!mirrorWs || mirrorWs.readyState !== WebSocket.OPEN) return;
    const color = $('mirror-color').value;
    const radius = Number($('mirror-size').value);
    const from = last || to;
    const dist = Math.hypot(to.x - from.x, to.y - from.y);
    const steps = Math.min(64, Math.max(1, Math.ceil(dist / Math.max(1, radius / 2))));
    let msg = '';
    for (let i = 1; i <= steps; i++) {
      const x = Math.round(from.x + ((to.x - from.x) * i) / steps);
      const y = Math.round(from.y + ((to.y - from.y) * i) / steps);
      msg += 'c ' + color + ' ' + x + ' ' + y + ' ' + radius + ';';
    }
    mirrorWs.send(msg);
    mirror.sent += steps;
    last = to;
    showMirrorStats();
  }
  canvas.addEventListener('pointerdown', (ev) => {
    canvas.setPointerCapture(ev.pointerId);
    last = null;
    stroke(canvasPoint(ev));
  });
  canvas.addEventListener('pointermove', (ev) => {
    if (ev.buttons & 1) stroke(canvasPoint(ev));
  });
  canvas.addEventListener('pointerup', () => { last = null; });
  $('mirror-clear').addEventListener('click', clearCanvas);
  $('mirror-group-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams(location.search);
    const name = $('mirror-group').value.trim();
    if (name) next.set('mirror', name);
    else next.delete('mirror');
    const q = next.toString();
    location.href = location.pathname + (q ? '?' + q : '');
  });

  // ------------------------------------------------------------------- status

  const status = demo.status;

  function since(time) {
    const t = Number(time);
    if (!Number.isFinite(t) || t <= 0) return time === undefined ? '' : String(time);
    // libwebsockets sends seconds since the epoch; accept milliseconds and microseconds too.
    const ms = t > 1e14 ? t / 1000 : t > 1e11 ? t : t * 1000;
    const secs = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return secs < 60 ? secs + ' s ago' : secs < 3600 ? Math.round(secs / 60) + ' min ago' : new Date(ms).toLocaleTimeString();
  }

  function shortAgent(ua) {
    if (!ua) return '';
    const m = /(HeadlessChrome|Chrome|Firefox|Safari|Edg|libwebsockets|Python|sockeye|node)[/ ]?[\d.]*/.exec(ua);
    return m ? m[0] : ua.slice(0, 40);
  }

  function cell(tr, text, title) {
    const td = document.createElement('td');
    td.textContent = text;
    if (title) td.title = title;
    tr.appendChild(td);
  }

  function renderStatus() {
    const body = $('status-conns');
    body.textContent = '';
    for (const c of status.conns) {
      const tr = document.createElement('tr');
      cell(tr, String(c.peer ?? c.address ?? '?'));
      cell(tr, since(c.time));
      const ua = String(c.ua ?? '');
      cell(tr, (c.protocol ? c.protocol + ' · ' : '') + shortAgent(ua), ua);
      body.appendChild(tr);
    }
    if (status.conns.length === 0) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = document.createElement('td');
      td.colSpan = 3;
      td.textContent = 'no connections';
      tr.appendChild(td);
      body.appendChild(tr);
    }
    $('status-count').textContent = String(status.conns.length);
    $('status-version').textContent = status.version
      ? status.version + (status.hostname ? ' on ' + status.hostname : '') + (status.wssOverH2 ? ' · WebSockets over HTTP/2' : '')
      : '';
  }

  function connectStatus() {
    showState('status-state', status, 'connecting');
    const ws = new WebSocket(wsBase, 'lws-status');
    ws.onopen = () => showState('status-state', status, 'open');
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      status.received++;
      status.version = msg.version ?? null;
      status.hostname = typeof msg.hostname === 'string' ? msg.hostname : null;
      status.wssOverH2 = msg.wss_over_h2 === true || msg.wss_over_h2 === 1 || msg.wss_over_h2 === '1';
      status.conns = Array.isArray(msg.conns) ? msg.conns : [];
      renderStatus();
    };
    ws.onclose = (ev) => showState('status-state', status, 'closed', closeDetail(ev));
  }

  // --------------------------------------------------------------------- echo

  const echo = demo.echo;
  let echoWs = null;
  let echoWaiter = null; // { resolve, reject, timer }: the one message in flight

  function connectEcho() {
    showState('echo-state', echo, 'connecting');
    const ws = new WebSocket(wsBase);
    ws.binaryType = 'arraybuffer';
    echoWs = ws;
    const opened = new Promise((resolve, reject) => {
      ws.onopen = () => {
        showState('echo-state', echo, 'open');
        $('echo-run').disabled = false;
        resolve(ws);
      };
      ws.onerror = () => reject(new Error('could not connect'));
    });
    ws.onmessage = (ev) => {
      const w = echoWaiter;
      echoWaiter = null;
      if (w) {
        clearTimeout(w.timer);
        w.resolve(ev.data);
      }
    };
    ws.onclose = (ev) => {
      if (echoWs === ws) showState('echo-state', echo, 'closed', closeDetail(ev));
      const w = echoWaiter;
      echoWaiter = null;
      if (w) {
        clearTimeout(w.timer);
        w.reject(new Error('connection closed (' + closeDetail(ev) + ')'));
      }
    };
    return opened;
  }

  function roundTrip(payload) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        echoWaiter = null;
        reject(new Error('no echo within 60 s'));
      }, 60000);
      echoWaiter = { resolve, reject, timer };
      echoWs.send(payload);
    });
  }

  function randomBytes(size) {
    const bytes = new Uint8Array(size);
    for (let off = 0; off < size; off += 65536) crypto.getRandomValues(bytes.subarray(off, Math.min(size, off + 65536)));
    return bytes;
  }

  /** `size` bytes of valid UTF-8, mostly ASCII with 2-, 3- and 4-byte characters mixed in. */
  function randomUtf8(size) {
    const b = randomBytes(size);
    let i = 0;
    while (i < size) {
      const r = b[i];
      const left = size - i;
      if (r < 200 || left < 2) {
        b[i] = 0x20 + (r % 95);
        i += 1;
      } else if (r < 230 || left < 3) {
        b[i] = 0xc3; // U+00C0..U+00FF
        b[i + 1] = 0x80 | (b[i + 1] & 0x3f);
        i += 2;
      } else if (r < 250 || left < 4) {
        b[i] = 0xe4 + (r % 6); // U+4000..U+9FFF, clear of the surrogates
        b[i + 1] = 0x80 | (b[i + 1] & 0x3f);
        b[i + 2] = 0x80 | (b[i + 2] & 0x3f);
        i += 3;
      } else {
        b[i] = 0xf0; // U+1F000..U+1FFFF (emoji and friends)
        b[i + 1] = 0x9f;
        b[i + 2] = 0x80 | (b[i + 2] & 0x3f);
        b[i + 3] = 0x80 | (b[i + 3] & 0x3f);
        i += 4;
      }
    }
    return b;
  }

  function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  async function sha256(bytes) {
    // crypto.subtle exists only in secure contexts (https, localhost): elsewhere the direct comparison stands alone.
    if (!crypto.subtle) return null;
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  /** 1 B, 64 KiB, 8 MiB, 2.13 MiB: exact sizes stay exact, others get two decimals. */
  function formatSize(n) {
    const unit = n >= 1048576 ? [1048576, ' MiB'] : n >= 1024 ? [1024, ' KiB'] : [1, ' B'];
    return Number((n / unit[0]).toFixed(2)) + unit[1];
  }

  function formatRate(bytes, ms) {
    if (!(ms > 0)) return '—';
    return formatSize(Math.round((bytes / ms) * 1000)) + '/s';
  }

  /** One verified round trip: what was sent must come back with the same type and the same bytes. */
  async function echoOne(size, binary) {
    const bytes = binary ? randomBytes(size) : randomUtf8(size);
    const sentSha = await sha256(bytes);
    const text = binary ? null : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    const t0 = performance.now();
    const data = await roundTrip(binary ? bytes : text);
    const ms = performance.now() - t0;
    const gotBinary = typeof data !== 'string';
    const got = gotBinary ? new Uint8Array(data) : new TextEncoder().encode(data);
    const gotSha = await sha256(got);
    let error = null;
    if (gotBinary !== binary) error = 'came back as ' + (gotBinary ? 'binary' : 'text');
    else if (got.length !== size) error = 'came back with ' + got.length + ' bytes';
    else if (!sameBytes(got, bytes)) error = 'bytes differ';
    else if (sentSha !== gotSha) error = 'SHA-256 differs';
    return { size, type: binary ? 'binary' : 'text', ok: error === null, error, ms, sha256: gotSha, sentSha256: sentSha };
  }

  function addResultRow(r) {
    const body = $('echo-results');
    if (body.querySelector('.empty')) body.textContent = '';
    const tr = document.createElement('tr');
    cell(tr, formatSize(r.size));
    cell(tr, r.type);
    const res = document.createElement('td');
    const badge = document.createElement('span');
    badge.className = 'badge ' + (r.ok ? 'ok' : 'fail');
    badge.textContent = r.ok ? 'verified' : 'FAILED';
    res.appendChild(badge);
    if (r.error) res.append(' ' + r.error);
    tr.appendChild(res);
    cell(tr, r.ms === undefined ? '—' : r.ms.toFixed(1) + ' ms');
    cell(tr, r.ms === undefined ? '—' : formatRate(r.size, r.ms));
    cell(tr, r.sha256 ? r.sha256.slice(0, 16) + '…' : '—', r.sha256 || '');
    body.prepend(tr);
  }

  async function runEcho(ev) {
    ev.preventDefault();
    if (echo.running) return;
    const form = $('echo-form');
    const sizes = [...form.querySelectorAll('input[name=size]:checked')].map((i) => Number(i.value));
    const types = [...form.querySelectorAll('input[name=type]:checked')].map((i) => i.value === 'binary');
    const repeat = Math.min(20, Math.max(1, Number($('echo-repeat').value) || 1));
    echo.running = true;
    $('echo-run').disabled = true;
    const run = { passed: 0, failed: 0, bytes: 0, ms: 0, done: false };
    echo.lastRun = run;
    try {
      if (!echoWs || echoWs.readyState !== WebSocket.OPEN) await connectEcho();
      for (const size of sizes) {
        for (const binary of types) {
          for (let k = 0; k < repeat; k++) {
            $('echo-summary').textContent = 'sending ' + formatSize(size) + ' ' + (binary ? 'binary' : 'text') + '…';
            let r;
            try {
              r = await echoOne(size, binary);
            } catch (err) {
              r = { size, type: binary ? 'binary' : 'text', ok: false, error: err.message };
            }
            echo.results.push(r);
            if (r.ok) {
              run.passed++;
              run.bytes += r.size;
              run.ms += r.ms;
            } else {
              run.failed++;
            }
            addResultRow(r);
          }
        }
      }
    } catch (err) {
      run.failed++;
      run.error = err.message;
    } finally {
      run.done = true;
      echo.runs++;
      echo.running = false;
      $('echo-run').disabled = !echoWs || echoWs.readyState !== WebSocket.OPEN;
      $('echo-summary').textContent = run.failed === 0
        ? run.passed + ' verified · ' + formatSize(run.bytes) + ' each way · ' + formatRate(run.bytes, run.ms)
        : run.failed + ' failed, ' + run.passed + ' verified' + (run.error ? ' (' + run.error + ')' : '');
      $('echo-summary').className = 'stats ' + (run.failed === 0 ? 'good' : 'bad');
    }
  }
  $('echo-form').addEventListener('submit', runEcho);

  connectCounter();
  connectMirror();
  connectStatus();
  connectEcho().catch(() => { /* shown by the pill */ });
  demo.userAgent = navigator.userAgent;
})();
