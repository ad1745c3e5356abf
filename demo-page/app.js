/*
 * sockeye demo page: plain browser JavaScript, no build step, no framework.
 *
 * Four WebSockets to the origin this page came from (ws:// for http://,
 * wss:// for https://), one per libwebsockets test protocol:
 *   dumb-increment-protocol  the counter (reset\n, closeme\n)
 *   lws-mirror-protocol      the shared canvas (`c #RRGGBB x y r;` commands)
 *   lws-status               the connection list (JSON)
 *   (none)                   the echo service, for the bulk test with compression on
 *   sockeye-echo-nodeflate   the same echo, for which the server declines
 *                            permessage-deflate: the bulk test with compression off
 * A browser always offers permessage-deflate, so the page chooses compression
 * by the subprotocol it asks for. The echo test keeps one socket, in the
 * chosen mode, and reconnects when the mode changes.
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
    echo: {
      state: 'connecting', running: false, runs: 0, results: [], lastRun: null,
      // Compression: 'off' or 'on' as chosen on the page; the open socket's mode, ws.protocol and ws.extensions
      // ('' when the server negotiated none); the last run in each mode.
      mode: 'off', connectedMode: null, protocol: null, extensions: null, byMode: { off: null, on: null },
    },
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

  /** A table's only row, saying why it is empty. */
  function emptyRow(body, columns, text) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    const td = document.createElement('td');
    td.colSpan = columns;
    td.textContent = text;
    tr.appendChild(td);
    body.appendChild(tr);
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
    if (status.conns.length === 0) emptyRow(body, 3, 'no connections');
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
  const NO_DEFLATE_PROTOCOL = 'sockeye-echo-nodeflate';
  const MODES = ['off', 'on'];
  let echoWs = null;
  let echoWaiter = null; // { resolve, reject, timer }: the one message in flight

  /** 'permessage-deflate' for 'permessage-deflate; client_max_window_bits=15', 'none' for '': the names without parameters. */
  function extensionNames(extensions) {
    if (!extensions) return 'none';
    return extensions.split(',').map((e) => e.split(';')[0].trim()).join(', ');
  }

  /** Run buttons: usable unless a run is going or the socket is still connecting (a run reconnects a closed one). */
  function setEchoButtons() {
    const busy = echo.running || echo.state === 'connecting';
    $('echo-run').disabled = busy;
    $('echo-run-both').disabled = busy;
    $('echo-compression').disabled = echo.running;
  }

  /** Lets go of an echo socket the page no longer uses (the mode changed), without a word to the console. */
  function retireEcho(ws) {
    ws.onmessage = null;
    ws.onerror = null;
    ws.onclose = null;
    // Closing a socket that is still connecting makes Chromium log an error: it is closed once it opens instead.
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000, 'compression switched');
    else if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'compression switched');
  }

  /** Connects the echo socket for `mode`: 'off' asks for sockeye-echo-nodeflate, 'on' for no subprotocol. */
  function connectEcho(mode) {
    if (echoWs) retireEcho(echoWs);
    echo.connectedMode = mode;
    echo.protocol = null;
    echo.extensions = null;
    showState('echo-state', echo, 'connecting', 'compression ' + mode);
    setEchoButtons();
    const ws = mode === 'off' ? new WebSocket(wsBase, NO_DEFLATE_PROTOCOL) : new WebSocket(wsBase);
    ws.binaryType = 'arraybuffer';
    echoWs = ws;
    const opened = new Promise((resolve, reject) => {
      ws.onopen = () => {
        echo.protocol = ws.protocol;
        echo.extensions = ws.extensions;
        showState('echo-state', echo, 'open', ws.extensions ? extensionNames(ws.extensions) : 'no extension');
        $('echo-state').title = 'subprotocol: ' + (ws.protocol || 'none') + ' · extensions: ' + (ws.extensions || 'none');
        setEchoButtons();
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
      if (echoWs === ws) {
        showState('echo-state', echo, 'closed', closeDetail(ev));
        setEchoButtons();
      }
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
    cell(tr, r.extensions === null ? '—' : extensionNames(r.extensions), 'compression ' + r.compression + (r.extensions ? ': ' + r.extensions : ''));
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

  /**
   * The comparison table: for each size and type, the throughput of the last run in each mode (all its
   * verified repeats together), under column heads that name the extension that run negotiated.
   */
  function renderCompare() {
    const rows = new Map(); // 'size type' -> { size, type, off, on }
    for (const mode of MODES) {
      const run = echo.byMode[mode];
      const head = $('echo-head-' + mode);
      head.textContent = 'compression ' + mode + (run && run.extensions !== null ? ' · ' + extensionNames(run.extensions) : '');
      head.title = run && run.extensions !== null ? 'subprotocol: ' + (run.protocol || 'none') + ' · extensions: ' + (run.extensions || 'none') : '';
      if (!run) continue;
      for (const r of run.results) {
        const key = r.size + ' ' + r.type;
        let row = rows.get(key);
        if (!row) rows.set(key, (row = { size: r.size, type: r.type, off: null, on: null }));
        const agg = row[mode] || (row[mode] = { passed: 0, failed: 0, bytes: 0, ms: 0, error: null });
        if (r.ok) {
          agg.passed++;
          agg.bytes += r.size;
          agg.ms += r.ms;
        } else {
          agg.failed++;
          agg.error = r.error;
        }
      }
    }
    const body = $('echo-compare');
    body.textContent = '';
    const sorted = [...rows.values()].sort((a, b) => a.size - b.size || (a.type === b.type ? 0 : a.type === 'text' ? -1 : 1));
    for (const row of sorted) {
      const tr = document.createElement('tr');
      cell(tr, formatSize(row.size));
      cell(tr, row.type);
      for (const mode of MODES) tr.appendChild(compareCell(mode, row[mode]));
      body.appendChild(tr);
    }
    if (sorted.length === 0) {
      emptyRow(body, 4, 'run the test in each mode, or press Run both');
      return;
    }
    // The whole run of each mode: every verified byte over the time of every round trip.
    const total = document.createElement('tr');
    total.className = 'total';
    cell(total, 'all');
    cell(total, '');
    for (const mode of MODES) total.appendChild(compareCell(mode, echo.byMode[mode]));
    body.appendChild(total);
  }

  function compareCell(mode, agg) {
    const td = document.createElement('td');
    td.dataset.mode = mode;
    if (!agg || (agg.passed === 0 && agg.failed === 0)) {
      td.textContent = '—';
    } else if (agg.failed > 0) {
      const badge = document.createElement('span');
      badge.className = 'badge fail';
      badge.textContent = 'FAILED';
      td.appendChild(badge);
      if (agg.error) td.append(' ' + agg.error);
      td.title = agg.failed + ' failed, ' + agg.passed + ' verified' + (agg.error ? ': ' + agg.error : '');
    } else {
      const rate = document.createElement('span');
      rate.className = 'rate';
      rate.textContent = formatRate(agg.bytes, agg.ms);
      td.appendChild(rate);
      td.title = agg.passed + ' verified · ' + formatSize(agg.bytes) + ' each way in ' + agg.ms.toFixed(1) + ' ms';
    }
    return td;
  }

  function summaryOf(run) {
    return run.failed === 0
      ? run.passed + ' verified · ' + formatSize(run.bytes) + ' each way · ' + formatRate(run.bytes, run.ms)
      : run.failed + ' failed, ' + run.passed + ' verified' + (run.error ? ' (' + run.error + ')' : '');
  }

  /** Runs the chosen sizes and types in one mode, on a socket connected in that mode; counts into `total` too. */
  async function runMode(mode, plan, total) {
    const run = { mode, protocol: null, extensions: null, passed: 0, failed: 0, bytes: 0, ms: 0, done: false, results: [] };
    echo.byMode[mode] = run;
    try {
      if (!echoWs || echo.connectedMode !== mode || echoWs.readyState !== WebSocket.OPEN) await connectEcho(mode);
      run.protocol = echo.protocol;
      run.extensions = echo.extensions;
      renderCompare();
      for (const size of plan.sizes) {
        for (const binary of plan.types) {
          for (let k = 0; k < plan.repeat; k++) {
            $('echo-summary').textContent = 'compression ' + mode + ': sending ' + formatSize(size) + ' ' + (binary ? 'binary' : 'text') + '…';
            let r;
            try {
              r = await echoOne(size, binary);
            } catch (err) {
              r = { size, type: binary ? 'binary' : 'text', ok: false, error: err.message };
            }
            r.compression = mode;
            r.extensions = run.extensions;
            echo.results.push(r);
            run.results.push(r);
            for (const t of [run, total]) {
              if (r.ok) {
                t.passed++;
                t.bytes += r.size;
                t.ms += r.ms;
              } else {
                t.failed++;
              }
            }
            addResultRow(r);
            renderCompare();
          }
        }
      }
    } catch (err) {
      run.failed++;
      run.error = err.message;
      total.failed++;
      total.error = err.message;
    } finally {
      run.done = true;
      renderCompare();
    }
  }

  /** Run: the chosen mode. Run both: the other mode first, then the chosen one, so the socket ends in the chosen mode. */
  async function runEcho(modes) {
    if (echo.running) return;
    const form = $('echo-form');
    const plan = {
      sizes: [...form.querySelectorAll('input[name=size]:checked')].map((i) => Number(i.value)),
      types: [...form.querySelectorAll('input[name=type]:checked')].map((i) => i.value === 'binary'),
      repeat: Math.min(20, Math.max(1, Number($('echo-repeat').value) || 1)),
    };
    echo.running = true;
    setEchoButtons();
    const total = { modes, passed: 0, failed: 0, bytes: 0, ms: 0, done: false };
    echo.lastRun = total;
    try {
      for (const mode of modes) await runMode(mode, plan, total);
    } finally {
      total.done = true;
      echo.runs++;
      echo.running = false;
      setEchoButtons();
      $('echo-summary').textContent = modes.map((m) => 'compression ' + m + ': ' + summaryOf(echo.byMode[m])).join(' — ');
      $('echo-summary').className = 'stats ' + (total.failed === 0 ? 'good' : 'bad');
    }
  }
  $('echo-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    runEcho([echo.mode]);
  });
  $('echo-run-both').addEventListener('click', () => {
    runEcho([...MODES.filter((m) => m !== echo.mode), echo.mode]);
  });
  for (const radio of document.querySelectorAll('input[name=compression]')) {
    radio.addEventListener('change', () => {
      if (!radio.checked || echo.running || radio.value === echo.mode) return;
      echo.mode = radio.value;
      connectEcho(echo.mode).catch(() => { /* shown by the pill */ });
    });
  }
  // A reload may restore another choice than the default: connect in the mode the page shows.
  echo.mode = document.querySelector('input[name=compression]:checked').value === 'on' ? 'on' : 'off';

  connectCounter();
  connectMirror();
  connectStatus();
  connectEcho(echo.mode).catch(() => { /* shown by the pill */ });
  demo.userAgent = navigator.userAgent;
})();
