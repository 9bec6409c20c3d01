// AgentCom Command Center: the operator page. Plain DOM, no framework,
// nothing loaded from elsewhere. It renders the hub's snapshot, applies
// the batched events of /ws/dashboard, and drives the hub's actions.
'use strict';

(() => {
  const TOKEN_KEY = 'agentcom.dashboardToken';
  const BACKOFF_MIN = 1000;
  const BACKOFF_MAX = 30000;
  const KEEPALIVE_MS = 25000;
  const PONG_WAIT_MS = 10000;
  const SNAPSHOT_GAP_MS = 500;
  const LANES = ['urgent', 'high', 'normal', 'low'];

  const S = {
    snap: null,
    ws: null,
    everConnected: false,
    backoff: BACKOFF_MIN,
    reconnectTimer: null,
    keepaliveTimer: null,
    pongTimer: null,
    snapshotInFlight: false,
    snapshotAgain: false,
    snapshotTimer: null,
    lastSnapshotRequest: 0,
    canAct: true,
    role: '',
    selectedAgent: null,
    recentSort: { key: 'at', dir: -1 },
    recentFilter: '',
    pending: new Map(), // ref → callback for results
    refSeq: 0,
    authFailures: 0,
    route: null,
    cursor: -1,
    tasks: null,
    taskFilter: null,
    tasksSeq: 0,
    tasksReload: null,
    selected: new Set(),
    taskView: null,
    taskSeq: 0,
    cameFromList: false,
    messages: null,
    series: null,
    seriesAt: 0,
    seriesMinutes: 0,
    log: null,
  };

  const $ = (id) => document.getElementById(id);

  // ---------- token ----------

  function token() { return localStorage.getItem(TOKEN_KEY) || ''; }

  // A link of the form /dashboard#token=<token> stores the token and drops
  // it from the address bar (a fragment never reaches the server).
  function tokenFromFragment() {
    const m = /(?:^#|&)token=([0-9a-fA-F]{16,256})/.exec(location.hash);
    if (!m) return;
    localStorage.setItem(TOKEN_KEY, m[1]);
    history.replaceState(null, '', location.pathname + location.search);
  }

  function authHeaders() {
    const t = token();
    return t ? { Authorization: 'Bearer ' + t } : {};
  }

  function askToken(message) {
    const d = $('token-dialog');
    $('token-error').hidden = !message;
    $('token-error').textContent = message || '';
    $('token-input').value = '';
    if (!d.open) d.showModal();
  }

  function initTokenDialog() {
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('token-input').value.trim();
      if (!v) return;
      localStorage.setItem(TOKEN_KEY, v);
      $('token-dialog').close();
      S.authFailures = 0;
      start();
    });
    $('token-cancel').addEventListener('click', () => $('token-dialog').close());
    $('btn-token').addEventListener('click', () => askToken(''));
  }

  // ---------- formatting ----------

  function rel(ms) {
    if (ms === null || ms === undefined || ms === 0) return '--';
    const s = Math.floor((Date.now() - ms) / 1000);
    if (s < 0) return 'just now';
    if (s < 60) return s + 's ago';
    if (s < 3600) return Math.floor(s / 60) + 'm ago';
    if (s < 86400) return Math.floor(s / 3600) + 'h ago';
    return Math.floor(s / 86400) + 'd ago';
  }

  function dur(ms) {
    if (!ms || ms <= 0) return '--';
    const s = Math.floor(ms / 1000);
    if (s >= 3600) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    if (s >= 60) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (ms < 1000) return ms + 'ms';
    return s + 's';
  }

  function uptime(ms) {
    if (!ms || ms <= 0) return '--';
    const m = Math.floor(ms / 60000);
    const d = Math.floor(m / 1440);
    const h = Math.floor((m % 1440) / 60);
    let out = '';
    if (d > 0) out += d + 'd ';
    if (h > 0 || d > 0) out += h + 'h ';
    return out + (m % 60) + 'm';
  }

  function bytes(n) {
    if (n === null || n === undefined) return '--';
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KB';
    return (n / 1048576).toFixed(1) + ' MB';
  }

  const pad2 = (n) => String(n).padStart(2, '0');

  // clock is the time of day in the browser's zone, 24-hour.
  function clock(ms) {
    if (!ms) return '--';
    const d = new Date(ms);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }

  // stamp is the date and time in the browser's zone, 24-hour.
  function stamp(ms) {
    if (!ms) return '--';
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' + clock(ms);
  }

  function utc(ms) {
    if (!ms) return '';
    return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  // when is the hover text of a time: local, then UTC.
  function when(ms) {
    if (!ms) return '';
    return stamp(ms) + ' (local)\n' + utc(ms);
  }

  function trunc(s, n) {
    s = s === null || s === undefined ? '' : String(s);
    return s.length > n ? s.slice(0, n) + '…' : s;
  }

  // ---------- DOM helpers (text only: nothing from the hub is parsed as HTML) ----------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else if (k === 'dataset') Object.assign(e.dataset, v);
        else e.setAttribute(k, v === true ? '' : v);
      }
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function cell(text, opts) {
    const c = el('td', { class: opts && opts.cls, title: opts && opts.title });
    c.textContent = text;
    return c;
  }

  // fill replaces a list's rows, unless they render the same: rows stay
  // put under the pointer and keep their selection while nothing changed.
  function fill(bodyId, emptyId, rows) {
    const body = $(bodyId);
    const html = rows.map((r) => r.outerHTML).join('');
    if (body.dataset.rendered !== html) {
      // A live refresh keeps the keyboard cursor on its row position, so
      // j/k then Enter still open a row when an update lands in between.
      const at = [...body.children].findIndex((r) => r.classList.contains('cursor'));
      body.replaceChildren(...rows);
      body.dataset.rendered = html;
      if (at >= 0 && rows.length) rows[Math.min(at, rows.length - 1)].classList.add('cursor');
    }
    if (emptyId) $(emptyId).hidden = rows.length > 0;
  }

  function setMetric(id, value) {
    const e = $(id);
    const v = String(value);
    if (e.textContent !== v) {
      e.textContent = v;
      e.classList.add('bump');
      setTimeout(() => e.classList.remove('bump'), 200);
    }
  }

  function toast(text, kind) {
    const t = el('div', { class: 'toast ' + (kind || ''), role: 'status' });
    t.textContent = text;
    $('toasts').append(t);
    setTimeout(() => t.remove(), kind === 'bad' ? 9000 : 5000);
  }

  // ---------- rendering ----------

  function render() {
    const s = S.snap;
    if (!s) return;
    renderHeader(s);
    renderAgents(s);
    renderQueue(s);
    renderWorkflows(s);
    renderRunning(s);
    renderThroughput(s);
    renderRecent(s);
    renderDeadLetter(s);
    renderStorage(s);
    renderAlerts(s);
  }

  function renderHeader(s) {
    const h = s.health || { status: 'ok', conditions: [] };
    const badge = $('health-badge');
    badge.className = 'health-badge ' + h.status;
    $('health-dot').className = 'dot ' + h.status;
    const details = h.details || (h.conditions || []).map((t) => ({ text: t, level: h.status }));
    let text = 'Healthy';
    if (h.status === 'warning') text = 'Warning -- ' + details.length + ' condition' + (details.length === 1 ? '' : 's');
    if (h.status === 'critical') {
      const c = details.find((d) => d.level === 'critical') || details[0];
      text = 'Critical' + (details.length > 1 ? ' (' + details.length + ')' : '') + ' -- ' + (c ? c.text : '');
    }
    $('health-text').textContent = text;
    // The badge is cut to its box; every condition is on hover and a click.
    badge.title = details.length ? details.map((d) => d.level + ': ' + d.text).join('\n') + '\n(click for the list)' : 'No condition to report';
    fill('health-conditions', null, details.map((d) => el('li', { class: d.level, text: d.text })));
    if (!details.length) $('health-conditions').hidden = true;

    setMetric('m-uptime', uptime(s.uptime_ms));
    setMetric('m-agents', (s.agents || []).length);
    setMetric('m-queued', s.queue ? s.queue.queued : 0);
    setMetric('m-running', (s.running_tasks || []).length);
    setMetric('m-throughput', (s.throughput ? s.throughput.completed_last_hour : 0) + '/hr');
    setMetric('m-dead', s.queue ? s.queue.dead_letter : 0);
  }

  function renderAgents(s) {
    const agents = s.agents || [];
    $('agents-count').textContent = agents.length;
    const rows = agents.map((a) => {
      const caps = (a.capabilities || []).map((c) => (typeof c === 'string' ? c : c.name || JSON.stringify(c)));
      const task = a.current_task_id
        ? el('a', { href: '#/tasks/' + encodeURIComponent(a.current_task_id), title: a.current_task_id + '\n' + (a.current_task_description || '') },
          a.current_task_description || a.current_task_id)
        : '--';
      const flags = (a.flags || []).map((f) => el('span', { class: 'tag warn', text: f }));
      const tr = el('tr', {
        class: 'clickable' + (S.selectedAgent === a.agent_id ? ' selected' : ''),
        dataset: { agent: a.agent_id },
        title: 'Show the timeline of ' + a.agent_id,
        onclick: () => selectAgent(a.agent_id),
      },
      el('td', { title: a.agent_id }, a.name || a.agent_id),
      el('td', null, el('span', { class: 'state' }, el('span', { class: 'dot ' + a.fsm_state }), a.fsm_state)),
      el('td', { class: 'trunc' }, task),
      el('td', { class: 'trunc narrow', title: caps.join(', ') }, caps.length ? caps.join(', ') : '--'),
      el('td', { title: when(a.connected_at) }, rel(a.connected_at)),
      el('td', { title: when(a.last_seen) }, rel(a.last_seen)),
      el('td', null, ...(flags.length ? flags : ['--'])));
      return tr;
    });
    fill('agents-body', 'agents-empty', rows);
  }

  function renderQueue(s) {
    const q = s.queue || {};
    const byLane = q.by_lane || {};
    for (const l of LANES) setMetric('lane-' + l, byLane[l] || 0);
    $('queue-count').textContent = q.queued || 0;
    const rows = (s.queued_tasks || []).map((t, i) => taskRow(t.id,
      cell(String(i + 1), { cls: 'num' }),
      descCell(t.id, t.description, t.not_before && t.not_before > Date.now() ? el('span', { class: 'tag warn', text: 'backoff' }) : null),
      el('td', null, el('span', { class: 'tag ' + laneTag(t.priority), text: t.lane }),
        t.paused ? el('span', { class: 'tag warn', text: 'paused', title: 'held by a paused lane or capability' }) : null),
      cell(t.submitted_by || '--'),
      el('td', { title: when(t.created_at) }, rel(t.created_at)),
      el('td', null, cancelButton(t.id))));
    fill('queued-body', 'queued-empty', rows);
  }

  // taskRow is a row of one task: a click (not on a control) opens it.
  function taskRow(id, ...cells) {
    return el('tr', {
      class: 'clickable', dataset: { task: id }, title: 'Open ' + id,
      onclick: (ev) => {
        if (ev.target.closest('button, input, a, label')) return;
        openTask(id);
      },
    }, ...cells);
  }

  // descCell shows a description on one line, cut to the column; the
  // whole text is on hover and in the task view.
  function descCell(id, text, extra) {
    return el('td', { class: 'trunc', title: id + (text ? '\n\n' + text : '') }, text || id, extra ? ' ' : null, extra || null);
  }

  function openTask(id) { location.hash = '#/tasks/' + encodeURIComponent(id); }

  function laneTag(p) { return ['bad', 'warn', 'info', ''][p] || ''; }

  // Workflows: what is paused, tasks waiting for dependencies or a
  // run_at time, and the periodic schedules.
  function renderWorkflows(s) {
    const p = s.paused || {};
    const held = (p.lanes || []).map((l) => 'lane ' + l).concat((p.capabilities || []).map((c) => 'capability ' + c));
    $('paused-list').textContent = held.length ? held.join(', ') : 'nothing';
    const lanes = LANES.map((l) => {
      const paused = (p.lanes || []).includes(l);
      return pauseButton(paused ? 'resume' : 'pause', { lane: l }, (paused ? 'Resume ' : 'Pause ') + l);
    }).concat((p.capabilities || []).map((c) => pauseButton('resume', { capability: c }, 'Resume ' + c)));
    $('lane-pause-buttons').replaceChildren(...lanes);
    const pending = s.pending_tasks || [];
    $('pending-count').textContent = pending.length;
    const rows = pending.map((t) => taskRow(t.id,
      descCell(t.id, t.description),
      el('td', null, el('span', { class: 'tag ' + (t.status === 'waiting' ? 'info' : ''), text: t.status })),
      cell(t.lane),
      t.status === 'scheduled'
        ? el('td', { title: when(t.run_at) }, when(t.run_at))
        : el('td', { title: (t.depends_on || []).join('\n') }, (t.depends_on || []).length + ' task(s)'),
      el('td', null, cancelButton(t.id))));
    fill('pending-body', 'pending-empty', rows);
    const sched = (s.schedules || []).map((x) => el('tr', null,
      cell(x.name),
      el('td', { title: x.timezone }, x.cron + ' (' + x.timezone + ')'),
      el('td', null, el('span', { class: 'tag ' + (x.error ? 'bad' : x.paused ? 'warn' : 'good'),
        text: x.error ? 'error' : x.paused ? 'paused' : 'active', title: x.error || '' })),
      el('td', { title: x.next_run ? when(x.next_run) : '' }, x.next_run ? when(x.next_run) : '--'),
      cell(x.last_task_id || '--'),
      el('td', { class: 'act' },
        scheduleButton(x.name, x.paused ? 'resume' : 'pause', x.paused ? 'Resume' : 'Pause'),
        scheduleButton(x.name, 'run', 'Run now'))));
    fill('schedules-body', 'schedules-empty', sched);
  }

  function pauseButton(type, target, label) {
    return el('button', {
      type: 'button', class: 'btn btn-small ' + type, dataset: target, text: label,
      onclick: (ev) => {
        ev.currentTarget.disabled = true;
        act(Object.assign({ type }, target), (r) => {
          if (r.type === 'pause_result' && (r.status === 'paused' || r.status === 'resumed' || r.status === 'unchanged')) {
            toast(r.kind + ' ' + r.name + ' ' + r.status, 'good');
          } else {
            toast(label + ': ' + (r.error || r.status) + (r.detail ? ' -- ' + r.detail : ''), 'bad');
          }
          requestSnapshot();
        });
      },
    });
  }

  function scheduleButton(name, action, label) {
    return el('button', {
      type: 'button', class: 'btn btn-small sched-' + action, dataset: { schedule: name }, text: label,
      onclick: (ev) => {
        ev.currentTarget.disabled = true;
        act({ type: 'schedule_action', name, action }, (r) => {
          if (r.type === 'schedule_result' && r.status === 'ok') {
            toast('Schedule ' + name + ': ' + action + (r.task_id ? ' (task ' + r.task_id + ')' : '') + ' done', 'good');
          } else {
            toast('Schedule ' + name + ': ' + (r.error || r.status) + (r.detail ? ' -- ' + r.detail : ''), 'bad');
          }
          requestSnapshot();
        });
      },
    });
  }

  function renderRunning(s) {
    const list = s.running_tasks || [];
    $('running-count').textContent = list.length;
    const now = Date.now();
    const rows = list.map((t) => taskRow(t.id,
      descCell(t.id, t.description),
      cell(t.agent_id || '--'),
      el('td', { class: 'num', dataset: { since: t.assigned_at } }, dur(now - t.assigned_at)),
      el('td', null, el('span', { class: 'tag ' + (t.accepted ? 'good' : 'warn'), text: t.accepted ? 'yes' : 'waiting' })),
      cell(String(t.generation), { cls: 'num' }),
      el('td', null, cancelButton(t.id))));
    fill('running-body', 'running-empty', rows);
  }

  function cancelButton(id) {
    return el('button', {
      type: 'button', class: 'btn btn-small act cancel', dataset: { task: id },
      onclick: (ev) => {
        const b = ev.currentTarget;
        b.disabled = true;
        b.textContent = 'Cancelling...';
        act({ type: 'cancel_task', task_id: id }, (r) => {
          if (r.type === 'cancel_result' && r.status === 'cancelled') {
            toast('Cancelled ' + id + (r.was_assigned_to ? ' (was on ' + r.was_assigned_to + ')' : ''), 'good');
          } else {
            toast('Cancel ' + id + ': ' + (r.status || r.error) + (r.detail ? ' -- ' + r.detail : ''), 'bad');
            b.disabled = false;
            b.textContent = 'Cancel';
          }
        });
      },
    }, 'Cancel');
  }

  function renderThroughput(s) {
    const t = s.throughput || {};
    setMetric('tp-completed', t.completed_last_hour || 0);
    setMetric('tp-failed', t.failed_last_hour || 0);
    setMetric('tp-avg', dur(t.avg_completion_ms));
    setMetric('tp-tokens', t.total_tokens_hour || 0);
    loadSeries(false);
    drawCharts();
  }

  function recentRows(s) {
    const done = (s.recent_completions || []).map((c) => ({
      task_id: c.task_id, agent_id: c.agent_id, description: c.description, status: 'completed',
      duration_ms: c.duration_ms, tokens_used: c.tokens_used || 0, at: c.completed_at, error: '',
    }));
    const failed = (s.recent_failures || []).map((f) => ({
      task_id: f.task_id, agent_id: f.agent_id, description: f.description,
      status: f.outcome === 'retried' ? 'failed (retrying)' : f.outcome === 'expired' ? 'expired' : 'dead letter',
      duration_ms: f.duration_ms, tokens_used: 0, at: f.failed_at, error: f.error || '',
    }));
    return done.concat(failed);
  }

  function renderRecent(s) {
    const q = S.recentFilter.toLowerCase();
    let rows = recentRows(s).filter((r) => !q || [r.description, r.agent_id, r.task_id, r.status]
      .some((v) => String(v || '').toLowerCase().includes(q)));
    const { key, dir } = S.recentSort;
    rows.sort((a, b) => {
      const x = a[key] === undefined || a[key] === null ? '' : a[key];
      const y = b[key] === undefined || b[key] === null ? '' : b[key];
      if (x < y) return -dir;
      if (x > y) return dir;
      return 0;
    });
    $('recent-count').textContent = rows.length;
    for (const th of document.querySelectorAll('#panel-recent th[data-sort]')) {
      const base = th.textContent.replace(/ [▲▼]$/, '');
      th.textContent = base + (th.dataset.sort === key ? (dir > 0 ? ' ▲' : ' ▼') : '');
    }
    fill('recent-body', 'recent-empty', rows.map((r) => taskRow(r.task_id,
      descCell(r.task_id, r.description),
      cell(r.agent_id || '--'),
      el('td', { title: r.error }, el('span', { class: 'tag ' + (r.status === 'completed' ? 'good' : 'bad'), text: r.status })),
      cell(dur(r.duration_ms), { cls: 'num' }),
      cell(String(r.tokens_used || 0), { cls: 'num' }),
      el('td', { title: when(r.at) }, rel(r.at)))));
  }

  function renderDeadLetter(s) {
    const list = s.dead_letter_tasks || [];
    $('dl-count').textContent = s.queue ? s.queue.dead_letter : list.length;
    fill('dl-body', 'dl-empty', list.map((t) => taskRow(t.id,
      descCell(t.id, t.description),
      el('td', { class: 'trunc', title: t.last_error || '' }, t.last_error || '--'),
      cell(String(t.retry_count || 0), { cls: 'num' }),
      el('td', { title: when(t.updated_at) }, rel(t.updated_at || t.created_at)),
      el('td', null, retryButton(t.id)))));
  }

  function retryButton(id) {
    return el('button', {
      type: 'button', class: 'btn btn-small act retry', dataset: { task: id },
      onclick: (ev) => {
        const b = ev.currentTarget;
        if (!S.ws || S.ws.readyState !== WebSocket.OPEN) {
          toast('Not connected', 'bad');
          return;
        }
        b.disabled = true;
        b.textContent = 'Retrying...';
        act({ type: 'retry_task', task_id: id }, (r) => {
          if (r.type === 'retry_result' && r.status === 'requeued') {
            b.textContent = 'Requeued';
            b.classList.add('ok');
            toast('Requeued ' + id, 'good');
          } else {
            b.textContent = r.status === 'not_found' ? 'Not Found' : 'Failed';
            b.classList.add('bad');
            toast('Retry ' + id + ': ' + (r.status || r.error) + (r.detail ? ' -- ' + r.detail : ''), 'bad');
          }
          setTimeout(() => { b.disabled = false; b.textContent = 'Retry'; b.classList.remove('ok', 'bad'); }, 2000);
        });
      },
    }, 'Retry');
  }

  function renderStorage(s) {
    const st = s.storage || {};
    const h = s.dets_health;
    const err = $('storage-error');
    err.hidden = !!st.available;
    err.textContent = st.available ? '' : 'Storage panel unavailable: ' + (st.error || 'no data');
    for (const b of document.querySelectorAll('#panel-storage .actions .btn')) b.disabled = !st.available && !h;
    const tables = (h && h.tables) || [];
    const degraded = new Set(st.degraded_tables || []);
    fill('storage-body', 'storage-empty', tables.map((t) => {
      const ok = t.status === 'ok' || t.status === 'available';
      const frag = typeof t.fragmentation_ratio === 'number' ? t.fragmentation_ratio : null;
      const fragCell = cell(ok && frag !== null ? (frag * 100).toFixed(1) + '%' : '--', { cls: 'num' });
      if (frag !== null && frag > 0.5) fragCell.classList.add('bad-text');
      const status = degraded.has(t.table) ? 'degraded' : t.status;
      return el('tr', { dataset: { table: t.table } },
        cell(t.table, { cls: 'mono' }),
        cell(ok ? String(t.record_count) : '--', { cls: 'num' }),
        cell(ok ? bytes(t.file_size_bytes) : '--', { cls: 'num' }),
        fragCell,
        el('td', null, el('span', { class: 'state' }, el('span', { class: 'dot ' + (status === 'ok' ? 'ok' : status === 'degraded' ? 'critical' : '') }), status)),
        el('td', { title: when(t.last_backup_at) }, rel(t.last_backup_at)),
        el('td', { title: when(t.last_verified_backup_at) }, rel(t.last_verified_backup_at)),
        el('td', null,
          el('button', { type: 'button', class: 'btn btn-small act compact-one', dataset: { table: t.table }, onclick: () => compact(t.table) }, 'Compact'),
          ' ',
          el('button', { type: 'button', class: 'btn btn-small btn-danger act restore', dataset: { table: t.table }, onclick: () => restore(t.table) }, 'Restore')));
    }));
    const parts = [];
    if (h) {
      parts.push('Last backup: ' + (h.last_backup_at ? rel(h.last_backup_at) + ' (' + stamp(h.last_backup_at) + ')' : 'never'));
      if ('last_verified_backup_at' in h) parts.push('Last verified backup: ' + (h.last_verified_backup_at ? rel(h.last_verified_backup_at) : 'never'));
      if ('last_compaction_at' in h) parts.push('Last compaction: ' + (h.last_compaction_at ? rel(h.last_compaction_at) : 'never'));
    }
    if (st.degraded_tables && st.degraded_tables.length) parts.push('DEGRADED: ' + st.degraded_tables.join(', '));
    $('storage-summary').textContent = parts.join(' · ') || '--';

    const rows = [];
    for (const run of s.compaction_history || []) {
      const results = run.results || [];
      for (const r of results) {
        const status = r.status || '?';
        const tag = status === 'compacted' || status === 'ok' ? 'good' : status === 'skipped' ? '' : 'bad';
        const saved = r.bytes_saved !== undefined ? bytes(r.bytes_saved)
          : (r.size_before !== undefined && r.size_after !== undefined ? bytes(r.size_before - r.size_after) : '--');
        rows.push(el('tr', { dataset: { table: r.table } },
          el('td', { title: when(run.timestamp) }, clock(run.timestamp)),
          cell(r.table, { cls: 'mono' }),
          el('td', { title: r.reason || '' }, el('span', { class: 'tag ' + tag, text: status + (r.retried ? ' (retried)' : '') }),
            r.reason ? ' ' + trunc(r.reason, 40) : ''),
          cell(dur(r.duration_ms) === '--' && r.duration_ms === 0 ? '0ms' : dur(r.duration_ms), { cls: 'num' }),
          cell(saved, { cls: 'num' })));
      }
    }
    fill('compaction-body', 'compaction-empty', rows);

    const evs = (st.events || []).map((e) => {
      const bad = /failed|degraded/.test(e.type);
      const text = describeStorageEvent(e);
      return el('li', { class: bad ? 'bad' : e.type === 'recovery_complete' ? 'warn' : 'good', title: when(e.timestamp) },
        clock(e.timestamp) + ' · ' + text);
    });
    fill('storage-events', 'storage-events-empty', evs);
  }

  function describeStorageEvent(e) {
    const tables = e.table || (Array.isArray(e.tables) ? e.tables.join(', ') : '')
      || (Array.isArray(e.tables_backed_up) ? e.tables_backed_up.length + ' tables' : '');
    const reason = e.reason ? ' -- ' + e.reason : '';
    switch (e.type) {
      case 'backup_complete': return 'Backup complete' + (tables ? ': ' + tables : '');
      case 'backup_failed': return 'Backup FAILED' + (tables ? ': ' + tables : '') + reason;
      case 'compaction_failed': return 'Compaction FAILED: ' + ((e.failures || []).map((f) => f.table + ' (' + f.reason + ')').join(', ') || tables);
      case 'recovery_complete': return 'Restored ' + tables + ' (' + (e.trigger || 'manual') + ')' + (e.backup_used ? ' from ' + e.backup_used : '');
      case 'recovery_failed': return 'Restore FAILED: ' + tables + reason;
      case 'degraded_mode': return 'DEGRADED: ' + tables + ' running empty after data loss';
      case 'drill_failed': return 'Restore drill FAILED: ' + tables + reason;
      default: return e.type + (tables ? ': ' + tables : '') + reason;
    }
  }

  // ---------- charts (canvas, drawn by hand) ----------
  // The points come from the hub's chart history (GET
  // /api/dashboard/series, kept across restarts); on the one-hour range
  // the snapshot's live minute counts are laid over them.

  const RANGE_STEP = { 60: 1, 360: 5, 1440: 10, 10080: 60 };

  async function loadSeries(force) {
    const minutes = Number($('chart-range').value) || 60;
    if (!force && Date.now() - S.seriesAt < 10000 && S.seriesMinutes === minutes) return;
    S.seriesAt = Date.now();
    let r;
    try {
      r = await call('GET', '/api/dashboard/series?minutes=' + minutes + '&step=' + (RANGE_STEP[minutes] || 1));
    } catch (e) {
      return;
    }
    if (!r || r.error) return;
    S.series = r;
    S.seriesMinutes = minutes;
    $('charts-title').textContent = 'Activity · ' + $('chart-range').selectedOptions[0].textContent;
    drawCharts();
  }

  function chartPoints() {
    const r = S.series;
    if (!r) return null;
    const pts = r.points.map((p) => Object.assign({}, p));
    const sr = S.snap && S.snap.series;
    if (sr && r.step_ms === sr.bucket_ms) {
      const n = sr.completed.length;
      const byT = new Map(pts.map((p) => [p.t, p]));
      for (let i = 0; i < n; i++) {
        const p = byT.get(sr.end - (n - 1 - i) * sr.bucket_ms);
        if (!p) continue;
        p.completed = Math.max(p.completed, sr.completed[i]);
        p.failed = Math.max(p.failed, sr.failed[i]);
        if (sr.queue_depth[i] !== null && (p.depth === null || p.depth === undefined)) p.depth = sr.queue_depth[i];
      }
    }
    return pts;
  }

  function cssVar(n) { return getComputedStyle(document.documentElement).getPropertyValue(n).trim(); }

  function prepCanvas(c) {
    const ratio = window.devicePixelRatio || 1;
    const w = c.clientWidth || 300;
    const h = Number(c.getAttribute('height')) || 100;
    if (c.width !== Math.round(w * ratio)) c.width = Math.round(w * ratio);
    c.style.height = h + 'px';
    c.height = Math.round(h * ratio);
    const ctx = c.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx, w, h };
  }

  const PAD = { l: 40, r: 8, t: 8, b: 14 };

  function rangeLabel(ms, span) {
    const d = new Date(ms);
    return span > 86400000 ? pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' + pad2(d.getHours()) + 'h'
      : pad2(d.getHours()) + ':' + pad2(d.getMinutes());
  }

  function axis(ctx, w, h, max, fmt, r) {
    ctx.strokeStyle = cssVar('--grid');
    ctx.fillStyle = cssVar('--muted');
    ctx.font = '10px system-ui, sans-serif';
    ctx.lineWidth = 1;
    const marks = max >= 2 && (max % 2 === 0 || max > 10 || fmt !== count) ? [0, max / 2, max] : [0, max];
    for (const v of marks) {
      const y = PAD.t + (h - PAD.t - PAD.b) * (1 - v / max);
      ctx.beginPath();
      ctx.moveTo(PAD.l, Math.round(y) + 0.5);
      ctx.lineTo(w - PAD.r, Math.round(y) + 0.5);
      ctx.stroke();
      ctx.fillText(fmt(v), 2, y + 3);
    }
    const span = r.end - r.start + r.step_ms;
    ctx.fillText(rangeLabel(r.start, span), PAD.l, h - 2);
    const endText = 'now';
    ctx.fillText(endText, w - PAD.r - ctx.measureText(endText).width, h - 2);
  }

  const count = (v) => String(Math.round(v));

  // drawSeries draws stacked bars or lines; every series is an array of
  // numbers or nulls (no data) as long as the points.
  function drawSeries(id, series, opts) {
    const c = $(id);
    const { ctx, w, h } = prepCanvas(c);
    const r = S.series;
    const n = series[0].vals.length;
    let max = 1;
    let points = 0;
    for (let i = 0; i < n; i++) {
      let sum = 0;
      let any = false;
      for (const s of series) {
        const v = s.vals[i];
        if (v === null || v === undefined) continue;
        if (v > 0 || opts.zeroIsData) any = true;
        if (opts.stacked) sum += v;
        else max = Math.max(max, v);
      }
      if (opts.stacked) max = Math.max(max, sum);
      if (any) points++;
    }
    if (opts.round) max = Math.ceil(max);
    c.dataset.points = String(points);
    axis(ctx, w, h, max, opts.fmt || count, r);
    const ph = h - PAD.t - PAD.b;
    const pw = w - PAD.l - PAD.r;
    const y = (v) => PAD.t + ph - (v / max) * ph;
    if (opts.bars) {
      const bw = pw / n;
      for (let i = 0; i < n; i++) {
        let base = 0;
        for (const s of series) {
          const v = s.vals[i] || 0;
          if (!v) continue;
          ctx.fillStyle = s.color;
          ctx.fillRect(PAD.l + i * bw + 0.5, y(base + v), Math.max(bw - 1, 1), (v / max) * ph);
          base += v;
        }
      }
      return;
    }
    const x = (i) => PAD.l + (n === 1 ? pw : (i / (n - 1)) * pw);
    const base = new Array(n).fill(0);
    for (const s of series) {
      const top = s.vals.map((v, i) => (v === null || v === undefined ? null : (opts.stacked ? base[i] + v : v)));
      ctx.strokeStyle = s.color;
      ctx.lineWidth = s.width || 1.5;
      ctx.setLineDash(s.dash || []);
      ctx.beginPath();
      let on = false;
      for (let i = 0; i < n; i++) {
        if (top[i] === null) { on = false; continue; }
        if (!on) { ctx.moveTo(x(i), y(top[i])); on = true; } else ctx.lineTo(x(i), y(top[i]));
      }
      ctx.stroke();
      ctx.setLineDash([]);
      // A point without neighbours (a lone minute of data) is a dot.
      ctx.fillStyle = s.color;
      for (let i = 0; i < n; i++) {
        if (top[i] === null || (i > 0 && top[i - 1] !== null) || (i < n - 1 && top[i + 1] !== null)) continue;
        ctx.beginPath();
        ctx.arc(x(i), y(top[i]), 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
      if (opts.stacked) for (let i = 0; i < n; i++) if (top[i] !== null) base[i] = top[i];
    }
  }

  function drawCharts() {
    const pts = chartPoints();
    if (!pts || !pts.length || $('view-overview').hidden) return;
    const lane = (k) => pts.map((p) => (p.depth === null || p.depth === undefined ? null : p.lanes[k]));
    drawSeries('chart-throughput', [
      { vals: pts.map((p) => p.completed), color: cssVar('--green') },
      { vals: pts.map((p) => p.failed), color: cssVar('--red') },
    ], { bars: true, stacked: true, round: true });
    const depth = pts.map((p) => (p.depth === null || p.depth === undefined ? null : p.depth));
    const lanesKnown = pts.some((p) => p.lanes && p.lanes.some((v) => v > 0));
    drawSeries('chart-depth', lanesKnown ? [
      { vals: lane(0), color: cssVar('--red') },
      { vals: lane(1), color: cssVar('--orange') },
      { vals: lane(2), color: cssVar('--blue') },
      { vals: lane(3), color: cssVar('--grey') },
    ] : [{ vals: depth, color: cssVar('--accent'), width: 2 }], { stacked: lanesKnown, zeroIsData: true, round: true });
    const ms = (k) => pts.map((p) => (p[k] > 0 ? p[k] : null));
    drawSeries('chart-latency', [
      { vals: ms('wait_p50_ms'), color: cssVar('--amber'), dash: [3, 3] },
      { vals: ms('wait_p95_ms'), color: cssVar('--amber') },
      { vals: ms('run_p50_ms'), color: cssVar('--blue'), dash: [3, 3] },
      { vals: ms('run_p95_ms'), color: cssVar('--blue') },
    ], { fmt: (v) => dur(v) === '--' ? '0' : dur(v) });
    drawSeries('chart-agents', [{ vals: pts.map((p) => (p.depth === null || p.depth === undefined ? null : p.agents)), color: cssVar('--green'), width: 2 }],
      { zeroIsData: true, round: true });
  }

  // ---------- timeline ----------

  function selectAgent(id) {
    S.selectedAgent = id;
    $('timeline').hidden = false;
    $('timeline-agent').textContent = id;
    for (const tr of document.querySelectorAll('#agents-body tr')) tr.classList.toggle('selected', tr.dataset.agent === id);
    requestTimeline();
  }

  function requestTimeline() {
    if (!S.selectedAgent) return;
    if (S.ws && S.ws.readyState === WebSocket.OPEN) {
      S.ws.send(JSON.stringify({ type: 'agent_timeline', agent_id: S.selectedAgent }));
    } else {
      api('GET', '/api/dashboard/agents/' + encodeURIComponent(S.selectedAgent) + '/timeline')
        .then((r) => r && renderTimeline(r));
    }
  }

  function renderTimeline(msg) {
    if (msg.agent_id !== S.selectedAgent) return;
    const entries = msg.entries || [];
    fill('timeline-list', 'timeline-empty', entries.map((e) => el('li', null,
      el('span', { title: when(e.timestamp) }, clock(e.timestamp)),
      el('span', { class: 'kind' }, e.kind),
      el('span', null, e.event, e.task_id ? ' ' : null,
        e.task_id ? el('a', { href: '#/tasks/' + encodeURIComponent(e.task_id), class: 'mono' }, e.task_id) : null,
        e.detail ? ' -- ' + e.detail : ''))));
  }

  // ---------- actions ----------

  function act(frame, onResult) {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN) {
      toast('Not connected: the action was not sent', 'bad');
      if (onResult) onResult({ type: 'error', error: 'disconnected' });
      return;
    }
    const ref = 'r' + (++S.refSeq);
    frame.ref = ref;
    if (onResult) S.pending.set(ref, onResult);
    S.ws.send(JSON.stringify(frame));
  }

  function storageResult(label) {
    return (r) => {
      if (r.type === 'error') {
        toast(label + ': ' + r.error + (r.detail ? ' -- ' + r.detail : ''), 'bad');
      } else if (r.status === 'ok') {
        toast(label + ' done', 'good');
      } else {
        toast(label + ' failed: ' + (r.error || 'unknown error'), 'bad');
      }
      requestSnapshot();
    };
  }

  function backupNow() {
    const b = $('btn-backup');
    b.disabled = true;
    b.textContent = 'Backing up...';
    act({ type: 'backup_now' }, (r) => {
      b.disabled = false;
      b.textContent = 'Back up now';
      storageResult('Backup')(r);
    });
  }

  function compact(table) {
    const force = $('compact-force').checked;
    const frame = { type: 'compact', force };
    if (table) frame.table = table;
    const label = 'Compaction of ' + (table || 'all tables');
    toast(label + ' started');
    act(frame, storageResult(label));
  }

  function restore(table) {
    toast('Checking the backup of ' + table + '...');
    act({ type: 'restore', table, dry_run: true }, (r) => {
      if (r.type === 'error' || r.status !== 'ok') {
        toast('Restore dry run of ' + table + ' failed: ' + (r.error || '') + (r.detail ? ' -- ' + r.detail : ''), 'bad');
        return;
      }
      const res = r.result || {};
      const backup = res.backup || res.backup_used || res.file || null;
      $('confirm-title').textContent = 'Restore ' + table + '?';
      $('confirm-text').textContent = 'The table will be replaced by ' + (backup ? 'the backup ' + backup : 'its latest backup')
        + '. Writes made since that backup are lost. This is what the dry run found:';
      $('confirm-detail').textContent = JSON.stringify(res, null, 2);
      $('confirm-detail').hidden = false;
      $('confirm-ok').textContent = 'Restore';
      const d = $('confirm-dialog');
      d.returnValue = '';
      d.onclose = () => {
        if (d.returnValue !== 'ok') return;
        const frame = { type: 'restore', table, dry_run: false };
        if (backup) frame.backup = backup;
        act(frame, storageResult('Restore of ' + table));
      };
      d.showModal();
    });
  }

  // ---------- socket ----------

  function wsURL() {
    const proto = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const t = token();
    return proto + location.host + '/ws/dashboard' + (t ? '?token=' + encodeURIComponent(t) : '');
  }

  function setConn(state, text) {
    $('conn-dot').className = 'dot ' + state;
    $('conn-text').textContent = text;
    document.querySelector('.conn-bar').classList.toggle('down', state === 'disconnected');
  }

  function connect() {
    clearTimeout(S.reconnectTimer);
    if (S.ws) {
      S.ws.onclose = null;
      S.ws.close();
    }
    setConn('connecting', 'Connecting...');
    let ws;
    try {
      ws = new WebSocket(wsURL());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    S.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      S.backoff = BACKOFF_MIN;
      setConn('connected', 'Connected');
      if (S.everConnected) ws.send(JSON.stringify({ type: 'request_snapshot' }));
      S.everConnected = true;
      startKeepalive();
      if (S.selectedAgent) requestTimeline();
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        console.error('dashboard: bad frame', e);
        return;
      }
      onFrame(msg);
    };
    ws.onclose = () => {
      stopKeepalive();
      S.snapshotInFlight = false;
      for (const [ref, cb] of S.pending) cb({ type: 'error', error: 'disconnected', ref });
      S.pending.clear();
      setConn('disconnected', 'Disconnected -- reconnecting');
      if (!opened) {
        // The upgrade failed: maybe the token is missing or wrong.
        checkAuth().then((ok) => { if (ok) scheduleReconnect(); });
        return;
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    clearTimeout(S.reconnectTimer);
    const delay = S.backoff + Math.random() * 0.3 * S.backoff;
    S.backoff = Math.min(S.backoff * 2, BACKOFF_MAX);
    S.reconnectTimer = setTimeout(connect, delay);
  }

  function startKeepalive() {
    stopKeepalive();
    S.keepaliveTimer = setInterval(() => {
      if (!S.ws || S.ws.readyState !== WebSocket.OPEN) return;
      S.ws.send(JSON.stringify({ type: 'ping' }));
      clearTimeout(S.pongTimer);
      S.pongTimer = setTimeout(() => { if (S.ws) S.ws.close(); }, PONG_WAIT_MS);
    }, KEEPALIVE_MS);
  }

  function stopKeepalive() {
    clearInterval(S.keepaliveTimer);
    clearTimeout(S.pongTimer);
  }

  // requestSnapshot asks for a fresh snapshot: one request in flight at a
  // time, and at most one per SNAPSHOT_GAP_MS, however busy the hub is.
  function requestSnapshot() {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN) return;
    if (S.snapshotInFlight) {
      S.snapshotAgain = true;
      return;
    }
    if (S.snapshotTimer) return; // already due
    const wait = S.lastSnapshotRequest + SNAPSHOT_GAP_MS - Date.now();
    if (wait > 0) {
      S.snapshotTimer = setTimeout(() => { S.snapshotTimer = null; requestSnapshot(); }, wait);
      return;
    }
    S.snapshotInFlight = true;
    S.lastSnapshotRequest = Date.now();
    S.ws.send(JSON.stringify({ type: 'request_snapshot' }));
  }

  function touch() {
    const now = Date.now();
    $('last-update').textContent = clock(now);
    $('last-update').title = utc(now);
  }

  function onFrame(msg) {
    if (msg.ref && S.pending.has(msg.ref)) {
      const cb = S.pending.get(msg.ref);
      S.pending.delete(msg.ref);
      cb(msg);
      if (msg.type !== 'error') return;
    }
    switch (msg.type) {
      case 'hello':
        // The badge shows the role the hub gave this connection; a role
        // that may not act gets no action controls at all.
        S.role = msg.role || 'none';
        S.canAct = !!msg.can_act;
        document.body.classList.toggle('viewer', !S.canAct);
        $('role-badge').hidden = false;
        $('role-badge').textContent = S.role;
        $('role-badge').className = 'role-badge role-' + S.role;
        $('role-badge').title = S.canAct ? 'This session may act (retry, cancel, storage, acknowledge)' : 'Read-only session: actions are hidden';
        break;
      case 'snapshot':
        S.snap = msg.data;
        touch();
        render();
        S.snapshotInFlight = false;
        if (S.snapshotAgain) {
          S.snapshotAgain = false;
          requestSnapshot();
        }
        break;
      case 'events':
        touch();
        onEvents(msg.data || []);
        break;
      case 'agent_timeline':
        renderTimeline(msg);
        break;
      case 'pong':
        clearTimeout(S.pongTimer);
        break;
      case 'error':
        if (!msg.ref) toast('Hub: ' + msg.error + (msg.detail ? ' -- ' + msg.detail : ''), 'bad');
        break;
      default:
        break;
    }
  }

  // At most one snapshot request per batch (the original asked once per
  // event); compaction, recovery and failures also show as toasts.
  function onEvents(events) {
    let refresh = false;
    let timeline = false;
    const taskIds = new Set();
    for (const e of events) {
      if (e.type === 'task_event') taskIds.add(e.task_id);
      switch (e.type) {
        case 'task_event':
        case 'agent_joined':
        case 'agent_left':
        case 'status_changed':
        case 'agent_state_changed':
        case 'resync':
          refresh = true;
          if (S.selectedAgent && e.agent_id === S.selectedAgent) timeline = true;
          if (e.type === 'task_event') flashTask(e.task_id);
          break;
        case 'backup_complete':
        case 'compaction_complete':
        case 'drill_complete':
          refresh = true;
          break;
        case 'backup_failed':
        case 'compaction_failed':
        case 'recovery_failed':
        case 'degraded_mode':
        case 'drill_failed':
          refresh = true;
          toast(describeStorageEvent(e), 'bad');
          break;
        case 'recovery_complete':
          refresh = true;
          toast(describeStorageEvent(e), e.trigger === 'auto' ? 'bad' : 'good');
          break;
        case 'alert':
          refresh = true;
          if (e.alert === 'alert_raised') toast('Alert: ' + (e.message || e.rule), 'bad');
          break;
        default:
          refresh = true;
      }
    }
    if (refresh) requestSnapshot();
    if (timeline) requestTimeline();
    if (taskIds.size) onTaskEvents(taskIds);
  }

  function flashTask(id) {
    for (const tr of document.querySelectorAll('tr[data-task="' + CSS.escape(id) + '"]')) {
      tr.classList.remove('flash');
      void tr.offsetWidth;
      tr.classList.add('flash');
    }
  }

  // ---------- HTTP ----------

  async function api(method, path, body) {
    const opts = { method, headers: authHeaders() };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    if (r.status === 503) {
      // The hub restarted and is still loading: its loading page says how
      // far, and turns back into the dashboard once the hub is ready.
      const b = await r.clone().json().catch(() => null);
      if (b && b.error === 'hub_loading') {
        location.reload();
        return null;
      }
    }
    if (r.status === 401 || r.status === 403) {
      S.authFailures++;
      askToken(r.status === 403 ? 'This token may not open the dashboard (it needs a viewer or admin role).'
        : token() ? 'The hub refused this token.' : '');
      return null;
    }
    if (!r.ok) throw new Error(method + ' ' + path + ': ' + r.status);
    return r.json();
  }

  // call is api for the views: a refusal with a JSON body ({"error":...})
  // comes back as that body for the caller to show; only a network
  // failure or a body that is not JSON throws.
  async function call(method, path, body, signal) {
    const opts = { method, headers: authHeaders(), signal };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    if (r.status === 401) {
      S.authFailures++;
      askToken(token() ? 'The hub refused this token.' : '');
      return null;
    }
    let out;
    try {
      out = await r.json();
    } catch (e) {
      throw new Error(method + ' ' + path + ': ' + r.status);
    }
    if (!r.ok && (!out || typeof out.error !== 'string')) throw new Error(method + ' ' + path + ': ' + r.status);
    return out;
  }

  // refusal describes an error body: its code and the first field error.
  function refusal(r) {
    const fe = r.errors && r.errors[0];
    return r.error + (fe ? ' (' + fe.field + ': ' + (fe.detail || fe.error) + ')' : r.detail ? ' (' + r.detail + ')' : '');
  }

  // checkAuth asks the state route: false when a token is needed.
  async function checkAuth() {
    try {
      const s = await api('GET', '/api/dashboard/state');
      if (!s) return false;
      S.snap = s;
      render();
      return true;
    } catch (e) {
      return true; // a network error: keep retrying the socket
    }
  }

  // ---------- push ----------

  function b64urlToBytes(s) {
    const pad = '='.repeat((4 - (s.length % 4)) % 4);
    const b = atob((s + pad).replace(/-/g, '+').replace(/_/g, '/'));
    const out = new Uint8Array(b.length);
    for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out;
  }

  function sameKey(buf, bytesWant) {
    if (!buf) return false;
    const a = new Uint8Array(buf);
    if (a.length !== bytesWant.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== bytesWant[i]) return false;
    return true;
  }

  function setNotify(text, cls) {
    const e = $('notify-status');
    e.textContent = text;
    e.className = cls || 'muted';
  }

  async function registerPush() {
    try {
      const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
      await navigator.serviceWorker.ready;
      const r = await api('GET', '/api/dashboard/vapid-key');
      if (!r) return;
      const key = b64urlToBytes(r.vapid_public_key);
      let sub = await reg.pushManager.getSubscription();
      if (sub && !sameKey(sub.options && sub.options.applicationServerKey, key)) {
        // The hub's key changed: the old subscription can never work.
        await sub.unsubscribe();
        sub = null;
      }
      if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      await api('POST', '/api/dashboard/push-subscribe', sub.toJSON());
      setNotify('Notifications active', 'good-text');
    } catch (e) {
      console.error('dashboard: push registration failed', e);
      setNotify('Notifications unavailable', 'warn');
    }
  }

  function initPush() {
    if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return;
    const btn = $('btn-notify');
    if (Notification.permission === 'granted') {
      registerPush();
    } else if (Notification.permission === 'denied') {
      setNotify('Notifications blocked', 'warn');
    } else {
      btn.hidden = false;
      btn.addEventListener('click', async () => {
        btn.disabled = true;
        btn.textContent = 'Requesting...';
        const p = await Notification.requestPermission();
        btn.hidden = true;
        if (p === 'granted') registerPush();
        else setNotify('Notifications blocked', 'warn');
      });
    }
  }

  // ---------- views and routes ----------
  // #/ overview, #/tasks?filters, #/tasks/ID, #/alerts, #/messages. The
  // address is the state: a link or a reload opens the same view.

  const VIEWS = ['overview', 'tasks', 'task', 'alerts', 'messages'];
  const TASK_FILTERS = ['archived', 'status', 'lane', 'agent', 'capability', 'submitted_by', 'q', 'since', 'until', 'order', 'limit', 'offset'];

  function parseRoute() {
    const h = location.hash.replace(/^#/, '');
    const [path, query] = h.split('?');
    const params = new URLSearchParams(query || '');
    const parts = path.split('/').filter(Boolean);
    // #/task/ID is read as #/tasks/ID (a hand-typed or shared link), and a
    // bare #/task, which names no task, as the task list.
    if ((parts[0] === 'tasks' || parts[0] === 'task') && parts[1]) {
      let id = parts[1];
      try { id = decodeURIComponent(id); } catch (e) { /* a malformed escape: use it as written */ }
      return { view: 'task', id, params };
    }
    if (parts[0] === 'task') return { view: 'tasks', params };
    if (VIEWS.includes(parts[0])) return { view: parts[0], params };
    return { view: 'overview', params };
  }

  function route() {
    const r = parseRoute();
    S.route = r;
    for (const v of VIEWS) $('view-' + v).hidden = v !== r.view;
    for (const a of document.querySelectorAll('.tabs .tab')) {
      const on = a.dataset.view === r.view || (a.dataset.view === 'tasks' && r.view === 'task');
      a.classList.toggle('active', on);
      if (on) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    S.cursor = -1;
    if (r.view !== 'task') stopLog();
    switch (r.view) {
      case 'tasks': showTasks(r.params); break;
      case 'task': showTask(r.id); break;
      case 'alerts': if (S.snap) renderAlerts(S.snap); break;
      case 'messages': loadMessages(); break;
      default: drawCharts(); break;
    }
  }

  // ---------- all tasks ----------

  function filtersFromParams(p) {
    const f = {};
    for (const k of TASK_FILTERS) if (p.get(k)) f[k] = p.get(k);
    if (!f.order) f.order = 'newest';
    if (!f.limit) f.limit = '50';
    return f;
  }

  function localInput(ms) {
    if (!ms) return '';
    const d = new Date(Number(ms));
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + 'T' + pad2(d.getHours()) + ':' + pad2(d.getMinutes());
  }

  function showTasks(params) {
    const f = filtersFromParams(params);
    S.taskFilter = f;
    const form = $('task-filters');
    for (const k of ['archived', 'status', 'lane', 'agent', 'capability', 'submitted_by', 'q', 'order', 'limit']) {
      const input = form.elements[k];
      if (input && document.activeElement !== input) input.value = f[k] || (k === 'order' ? 'newest' : '');
    }
    form.elements.since.value = localInput(f.since);
    form.elements.until.value = localInput(f.until);
    loadTasks();
  }

  // setFilters writes the form into the address (offset back to 0), which
  // loads the list.
  function setFilters(extra) {
    const form = $('task-filters');
    const p = new URLSearchParams();
    for (const k of ['archived', 'status', 'lane', 'agent', 'capability', 'submitted_by', 'q', 'order', 'limit']) {
      const v = (form.elements[k].value || '').trim();
      if (v && !(k === 'order' && v === 'newest') && !(k === 'limit' && v === '50')) p.set(k, v);
    }
    for (const k of ['since', 'until']) {
      const v = form.elements[k].value;
      if (v) {
        const ms = new Date(v).getTime() + (k === 'until' ? 59999 : 0);
        if (!Number.isNaN(ms)) p.set(k, String(ms));
      }
    }
    for (const [k, v] of Object.entries(extra || {})) if (v) p.set(k, v);
    const q = p.toString();
    const target = '#/tasks' + (q ? '?' + q : '');
    if (location.hash === target) loadTasks();
    else location.hash = target;
  }

  async function loadTasks() {
    const f = S.taskFilter || filtersFromParams(new URLSearchParams());
    // "any" status is every task, the dead letter included.
    const q = new URLSearchParams(Object.assign({ status: 'all' }, f)).toString();
    const seq = ++S.tasksSeq;
    let r;
    try {
      r = await call('GET', '/api/dashboard/tasks?' + q);
    } catch (e) {
      $('tasks-error').hidden = false;
      $('tasks-error').textContent = 'Could not load tasks: ' + e.message;
      return;
    }
    if (!r || seq !== S.tasksSeq) return;
    if (r.error) {
      $('tasks-error').hidden = false;
      $('tasks-error').textContent = 'Refused: ' + refusal(r);
      return;
    }
    $('tasks-error').hidden = true;
    $('tasks-title').textContent = f.archived === 'true' ? 'Archived tasks' : 'All tasks';
    S.tasks = r;
    renderTasks();
  }

  function statusTag(st) {
    const cls = { completed: 'good', dead_letter: 'bad', cancelled: '', assigned: 'info', queued: 'warn' }[st] || '';
    const label = { assigned: 'running', dead_letter: 'dead letter' }[st] || st;
    return el('span', { class: 'tag ' + cls, text: label });
  }

  function lastAgent(t) {
    if (t.assigned_to) return t.assigned_to;
    const a = t.attempts || [];
    return a.length ? a[a.length - 1].agent_id : '';
  }

  function renderTasks() {
    const r = S.tasks;
    if (!r) return;
    const keep = new Set(S.selected);
    S.selected = new Set();
    const rows = r.tasks.map((t) => {
      const checked = keep.has(t.id);
      if (checked) S.selected.add(t.id);
      return taskRow(t.id,
        el('td', { class: 'act sel' }, el('input', {
          type: 'checkbox', class: 'pick', 'aria-label': 'Select ' + t.id, dataset: { task: t.id, status: t.status },
          checked, onchange: (ev) => { toggleSelected(t.id, ev.target.checked); },
        })),
        cell(t.id, { cls: 'mono' }),
        descCell(t.id, t.description),
        el('td', { title: t.last_error ? String(t.last_error) : '' }, statusTag(t.status)),
        el('td', null, el('span', { class: 'tag ' + laneTag(t.priority), text: LANES[t.priority] || t.priority })),
        el('td', { class: 'trunc narrow', title: lastAgent(t) }, lastAgent(t) || '--'),
        el('td', { class: 'trunc narrow', title: t.submitted_by || '' }, t.submitted_by || '--'),
        el('td', { title: when(t.created_at) }, stamp(t.created_at)),
        el('td', { title: when(t.updated_at) }, rel(t.updated_at)),
        cell(String(t.retry_count || 0), { cls: 'num' }));
    });
    fill('tasks-body', 'tasks-empty', rows);
    $('tasks-total').textContent = r.total;
    const from = r.total ? r.offset + 1 : 0;
    const to = r.offset + r.count;
    $('page-info').textContent = from + '–' + to + ' of ' + r.total;
    $('page-prev').disabled = r.offset <= 0;
    $('page-next').disabled = r.next_offset === null || r.next_offset === undefined;
    updateSelection();
  }

  function toggleSelected(id, on) {
    if (on) S.selected.add(id);
    else S.selected.delete(id);
    updateSelection();
  }

  function updateSelection() {
    const picks = [...document.querySelectorAll('#tasks-body input.pick')];
    const n = S.selected.size;
    $('tasks-selected').textContent = n ? n + ' selected' : '';
    $('tasks-all').checked = picks.length > 0 && picks.every((p) => p.checked);
    const statuses = picks.filter((p) => p.checked).map((p) => p.dataset.status);
    $('bulk-retry').disabled = !statuses.some((st) => st === 'dead_letter');
    $('bulk-cancel').disabled = !statuses.some((st) => st === 'queued' || st === 'assigned');
  }

  function page(delta) {
    const r = S.tasks;
    if (!r) return;
    const off = delta > 0 ? r.next_offset : Math.max(0, r.offset - r.limit);
    if (off === null || off === undefined || (delta < 0 && r.offset === 0)) return;
    const p = new URLSearchParams(location.hash.split('?')[1] || '');
    if (off) p.set('offset', String(off));
    else p.delete('offset');
    const q = p.toString();
    location.hash = '#/tasks' + (q ? '?' + q : '');
  }

  async function bulk(action) {
    const picks = [...document.querySelectorAll('#tasks-body input.pick:checked')];
    const ids = picks.filter((p) => action === 'retry' ? p.dataset.status === 'dead_letter'
      : p.dataset.status === 'queued' || p.dataset.status === 'assigned').map((p) => p.dataset.task);
    if (!ids.length) return;
    const ok = await confirmDialog(action === 'retry' ? 'Retry ' + ids.length + ' task(s)?' : 'Cancel ' + ids.length + ' task(s)?',
      action === 'retry' ? 'They go back to the queue with their failures forgotten.' : 'Running tasks are taken from their agents.',
      ids.join('\n'), action === 'retry' ? 'Retry' : 'Cancel tasks');
    if (!ok) return;
    let r;
    try {
      r = await call('POST', '/api/dashboard/tasks/bulk', { action, task_ids: ids });
    } catch (e) {
      toast('Bulk ' + action + ' failed: ' + e.message, 'bad');
      return;
    }
    if (!r) return;
    if (r.error) {
      toast('Bulk ' + action + ' refused: ' + refusal(r), 'bad');
      return;
    }
    const failed = r.results.filter((x) => x.status !== 'requeued' && x.status !== 'cancelled');
    toast((action === 'retry' ? 'Requeued ' : 'Cancelled ') + r.succeeded + ' task(s)'
      + (failed.length ? '; ' + failed.length + ' not: ' + failed.slice(0, 3).map((x) => x.task_id + ' ' + x.status + (x.state ? ' (' + x.state + ')' : '')).join(', ') : ''),
      failed.length ? 'bad' : 'good');
    S.selected.clear();
    loadTasks();
  }

  function confirmDialog(title, text, detail, okLabel) {
    return new Promise((resolve) => {
      $('confirm-title').textContent = title;
      $('confirm-text').textContent = text;
      $('confirm-detail').textContent = detail || '';
      $('confirm-detail').hidden = !detail;
      $('confirm-ok').textContent = okLabel;
      const d = $('confirm-dialog');
      d.returnValue = '';
      d.onclose = () => resolve(d.returnValue === 'ok');
      d.showModal();
    });
  }

  // ---------- one task ----------

  async function showTask(id) {
    if (S.taskView && S.taskView.id !== id) {
      S.taskView = null;
      $('task-title').textContent = id;
      $('task-status').textContent = '';
    }
    const seq = ++S.taskSeq;
    let t;
    try {
      t = await call('GET', '/api/dashboard/tasks/' + encodeURIComponent(id));
    } catch (e) {
      t = { error: 'unreachable', detail: e.message };
    }
    if (seq !== S.taskSeq || !t) return;
    if (t.error) {
      S.taskView = null;
      stopLog();
      $('task-error').hidden = false;
      $('task-error').textContent = t.error === 'task_not_found' ? 'No task ' + id + ' on this hub.' : 'Could not load ' + id + ': ' + refusal(t);
      $('task-body').hidden = true;
      $('task-retry').hidden = $('task-cancel').hidden = true;
      $('task-title').textContent = id;
      $('task-status').textContent = '';
      return;
    }
    $('task-error').hidden = true;
    $('task-body').hidden = false;
    S.taskView = t;
    renderTask(t);
  }

  function pretty(v) {
    if (v === null || v === undefined || v === '') return '--';
    if (typeof v === 'string') return v;
    return JSON.stringify(v, null, 2);
  }

  // usageText is what agents reported spending on a task, or null.
  function usageText(u) {
    if (!u) return null;
    const parts = [];
    if (u.input_tokens) parts.push(u.input_tokens + ' in');
    if (u.output_tokens) parts.push(u.output_tokens + ' out');
    if (u.total_tokens) parts.push(u.total_tokens + ' tokens');
    if (u.cost_usd) parts.push('$' + u.cost_usd.toFixed(u.cost_usd < 1 ? 4 : 2));
    return parts.join(', ') || null;
  }

  function renderTask(t) {
    document.title = t.id + ' · AgentCom Command Center';
    $('task-title').textContent = t.description ? t.description.split('\n')[0] : t.id;
    $('task-title').title = t.description || '';
    const tag = statusTag(t.status);
    $('task-status').className = tag.className;
    $('task-status').textContent = tag.textContent;
    $('task-desc').textContent = t.description || '';
    const meta = [
      ['Task id', t.id],
      ['Status', t.status],
      ['Archived', t.archived ? 'yes: ended longer ago than the task retention' : null],
      ['Lane', LANES[t.priority] || String(t.priority)],
      ['Submitted by', t.submitted_by || '--'],
      ['Created', t.created_at, 'time'],
      ['Updated', t.updated_at, 'time'],
      ['Assigned to', t.assigned_to || '--'],
      ['Generation', String(t.generation)],
      ['Failures', (t.retry_count || 0) + ' of ' + t.max_retries],
      ['Needs', (t.needed_capabilities || []).join(', ') || '--'],
      ['Target agent', t.target_agent || '--'],
      ['Deadline', t.complete_by, 'time'],
      ['Not before', t.not_before, 'time'],
      ['Tokens used', t.tokens_used === null || t.tokens_used === undefined ? '--' : String(t.tokens_used)],
      ['Usage', usageText(t.usage)],
      ['Cancelled by', t.cancelled_by || null],
      ['Declined by', (t.rejected_by || []).join(', ') || null],
      ['Runs at', t.run_at, 'time'],
      ['Unique key', t.unique_key || null],
      ['Schedule', t.schedule ? t.schedule + (t.schedule_tick ? ' (tick ' + utc(t.schedule_tick) + ')' : ' (run now)') : null],
      ['Paused', t.paused ? 'held by a paused lane or capability' : null],
      ['Upstream', (t.depends_on || []).length ? t.depends_on : null, 'tasks'],
      ['Downstream', (t.dependents || []).length ? t.dependents : null, 'tasks'],
    ];
    const dl = [];
    for (const [k, v, kind] of meta) {
      if (v === null || (kind === 'time' && !v)) continue;
      dl.push(el('dt', null, k));
      if (kind === 'tasks') {
        // Links to the upstream (depends_on) or downstream tasks.
        const links = [];
        v.forEach((id, i) => links.push(i ? ', ' : '', el('a', { href: '#/tasks/' + encodeURIComponent(id), class: 'mono task-link' }, id)));
        dl.push(el('dd', null, ...links));
        continue;
      }
      dl.push(kind === 'time' ? el('dd', { title: utc(v) }, stamp(v) + ' · ' + rel(v)) : el('dd', { class: k === 'Task id' ? 'mono' : '' }, v));
    }
    $('task-meta').replaceChildren(...dl);
    $('task-metadata').textContent = pretty(t.metadata && Object.keys(t.metadata).length ? t.metadata : null);
    const attempts = (t.attempts || []).slice().reverse();
    fill('task-attempts', 'task-attempts-empty', attempts.map((a) => el('tr', null,
      cell(String(a.generation), { cls: 'num' }),
      cell(a.agent_id),
      el('td', { title: when(a.assigned_at) }, clock(a.assigned_at)),
      el('td', { title: when(a.accepted_at) }, a.accepted_at ? clock(a.accepted_at) : '--'),
      el('td', { title: when(a.ended_at) }, a.ended_at ? clock(a.ended_at) : '--'),
      cell(a.ended_at ? dur(a.ended_at - a.assigned_at) : dur(Date.now() - a.assigned_at), { cls: 'num' }),
      el('td', { class: 'trunc', title: a.reason || '' },
        el('span', { class: 'tag ' + ({ completed: 'good', failed: 'bad', cancelled: '', reclaimed: 'warn', rejected: 'warn' }[a.outcome] || 'info'),
          text: a.outcome || 'running' }), a.reason ? ' ' + a.reason : ''))));
    $('task-last-error').textContent = pretty(t.last_error);
    const out = [];
    if (t.last_output !== undefined && t.last_output !== null) out.push('last output:\n' + pretty(t.last_output));
    if (t.result !== undefined && t.result !== null) out.push('result:\n' + pretty(t.result));
    $('task-output').textContent = out.join('\n\n') || '--';
    fill('task-history', null, (t.history || []).map((h) => el('li', { title: when(h.timestamp) },
      stamp(h.timestamp) + ' · ' + h.event + (h.details !== null && h.details !== undefined && h.details !== '' ? ' -- ' + (typeof h.details === 'string' ? h.details : JSON.stringify(h.details)) : ''))));
    const running = t.status === 'assigned';
    $('task-live-wrap').hidden = !running;
    if (running) renderLive(t);
    loadTaskTimeline(t);
    if (!S.log || S.log.id !== t.id) startLog(t.id);
    $('task-retry').hidden = t.status !== 'dead_letter';
    $('task-cancel').hidden = !['queued', 'assigned', 'waiting', 'scheduled'].includes(t.status);
  }

  // loadTaskTimeline shows what the agents that ran the task did with it
  // (the hub keeps each agent's recent timeline).
  async function loadTaskTimeline(t) {
    const agents = [...new Set((t.attempts || []).map((a) => a.agent_id).filter(Boolean))].slice(-5);
    const seq = S.taskSeq;
    const entries = [];
    for (const id of agents) {
      let r;
      try {
        r = await api('GET', '/api/dashboard/agents/' + encodeURIComponent(id) + '/timeline');
      } catch (e) {
        continue;
      }
      if (!r || !r.entries) continue;
      for (const e of r.entries) if (e.task_id === t.id) entries.push(Object.assign({ agent: id }, e));
    }
    if (seq !== S.taskSeq) return;
    entries.sort((a, b) => b.timestamp - a.timestamp);
    // The description is on the page already: a detail that only repeats
    // it is left out.
    const repeats = (d) => !!t.description && t.description.startsWith(d.replace(/…$/, ''));
    fill('task-timeline', 'task-timeline-empty', entries.map((e) => el('li', { title: when(e.timestamp) },
      clock(e.timestamp) + ' · ' + e.agent + ' · ' + e.event + (e.detail && !repeats(e.detail) ? ' -- ' + e.detail : ''))));
  }

  // ---------- live output ----------
  // The task view follows GET /api/dashboard/tasks/ID/logs: long polls
  // from the last offset until the task ended and nothing more came.

  const LOG_KEEP = 256 * 1024; // characters kept on the page
  const LOG_WAIT_MS = 25000;

  function stopLog() {
    if (!S.log) return;
    S.log.stopped = true;
    S.log.abort.abort();
    S.log = null;
  }

  function startLog(id) {
    stopLog();
    const st = { id, next: 0, text: '', stopped: false, abort: new AbortController() };
    S.log = st;
    $('task-log').textContent = '';
    $('task-log-wrap').hidden = true;
    const show = (r) => {
      const pre = $('task-log');
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = st.text;
      if (atEnd) pre.scrollTop = pre.scrollHeight;
      const running = !r.done;
      $('task-log-wrap').hidden = !st.text && !running;
      $('task-log-state').textContent = running ? (st.text ? '· live' : '· waiting for output') : '· ended';
      if (!st.text && running) pre.textContent = '(nothing yet)';
    };
    (async () => {
      let wait = 0;
      let failures = 0;
      while (!st.stopped) {
        let r;
        try {
          r = await call('GET', '/api/dashboard/tasks/' + encodeURIComponent(id) + '/logs?since=' + st.next + '&wait_ms=' + wait,
            undefined, st.abort.signal);
        } catch (e) {
          if (st.stopped) return;
          failures++;
          await new Promise((res) => setTimeout(res, Math.min(30000, 1000 * 2 ** failures)));
          continue;
        }
        if (st.stopped || !r || r.error) return;
        failures = 0;
        if (r.truncated) st.text += (st.text ? '\n' : '') + '[earlier output is no longer kept]\n';
        st.text += r.data || '';
        if (st.text.length > LOG_KEEP) st.text = '[…]' + st.text.slice(st.text.length - LOG_KEEP);
        st.next = r.next;
        show(r);
        if (r.done && !r.data) return;
        wait = LOG_WAIT_MS;
      }
    })();
  }

  // renderLive shows what the hub knows of a running task: its holder,
  // the attempt's progress and the last report, refreshed on every event
  // of the task.
  function renderLive(t) {
    const a = (t.attempts || [])[t.attempts.length - 1] || {};
    const lines = [
      'agent ' + (t.assigned_to || '?') + ', generation ' + t.generation,
      'assigned ' + clock(a.assigned_at) + (a.accepted_at ? ', accepted ' + clock(a.accepted_at) : ', waiting for the agent to accept'),
      'running for ' + dur(Date.now() - (a.assigned_at || t.updated_at)) + ', last heard ' + rel(t.updated_at),
    ];
    const last = (t.history || [])[0];
    if (last) lines.push('latest: ' + last.event + ' at ' + clock(last.timestamp));
    $('task-live').textContent = lines.join('\n');
  }

  function taskAction(kind) {
    const t = S.taskView;
    if (!t) return;
    const b = $(kind === 'retry' ? 'task-retry' : 'task-cancel');
    b.disabled = true;
    act(kind === 'retry' ? { type: 'retry_task', task_id: t.id } : { type: 'cancel_task', task_id: t.id }, (r) => {
      b.disabled = false;
      const ok = (r.type === 'retry_result' && r.status === 'requeued') || (r.type === 'cancel_result' && r.status === 'cancelled');
      toast((kind === 'retry' ? 'Retry ' : 'Cancel ') + t.id + ': ' + (ok ? 'done' : (r.status || r.error) + (r.detail ? ' -- ' + r.detail : '')), ok ? 'good' : 'bad');
      showTask(t.id);
    });
  }

  // ---------- alerts ----------

  function renderAlerts(s) {
    const p = s.alert_panel || { active: [], recent: [] };
    const unacked = p.active.filter((a) => !a.acked_at).length;
    const badge = $('alerts-count');
    badge.hidden = p.active.length === 0;
    badge.textContent = unacked ? String(unacked) : p.active.length + ' ✓';
    badge.classList.toggle('hot', unacked > 0);
    if (S.route && S.route.view !== 'alerts') return;
    $('alerts-active-count').textContent = p.active.length;
    const sev = (a) => el('span', { class: 'tag ' + (a.severity === 'critical' ? 'bad' : 'warn'), text: a.severity });
    const ack = (a) => a.acked_at ? el('span', { title: when(a.acked_at) + (a.ack_note ? '\n' + a.ack_note : '') }, 'by ' + a.acked_by + ' ' + rel(a.acked_at)) : '--';
    fill('alerts-active', 'alerts-active-empty', p.active.map((a) => el('tr', { dataset: { rule: a.rule }, class: a.acked_at ? 'acked' : '' },
      el('td', null, sev(a)),
      cell(a.rule, { cls: 'mono' }),
      el('td', { class: 'trunc', title: a.message }, a.message),
      el('td', { title: when(a.raised_at) }, rel(a.raised_at)),
      el('td', null, ack(a)),
      el('td', { class: 'act' }, a.acked_at ? null : el('button', {
        type: 'button', class: 'btn btn-small act ack', dataset: { rule: a.rule },
        onclick: (ev) => ackAlert(a.rule, ev.currentTarget),
      }, 'Acknowledge')))));
    fill('alerts-recent', 'alerts-recent-empty', p.recent.map((a) => el('tr', null,
      el('td', null, sev(a)),
      cell(a.rule, { cls: 'mono' }),
      el('td', { class: 'trunc', title: a.message }, a.message),
      el('td', { title: when(a.raised_at) }, stamp(a.raised_at)),
      el('td', { title: when(a.cleared_at) }, a.cleared_at ? stamp(a.cleared_at) : '--'),
      el('td', null, ack(a)))));
    const h = s.health || {};
    fill('alerts-conditions', 'alerts-conditions-empty', (h.details || []).map((d) => el('li', { class: d.level === 'critical' ? 'bad' : 'warn' }, d.text)));
  }

  async function ackAlert(rule, b) {
    b.disabled = true;
    let r;
    try {
      r = await call('POST', '/api/alerts/' + encodeURIComponent(rule) + '/ack', {});
    } catch (e) {
      toast('Acknowledge ' + rule + ': ' + e.message, 'bad');
      b.disabled = false;
      return;
    }
    if (!r) return;
    if (r.error) toast('Acknowledge ' + rule + ': ' + refusal(r), 'bad');
    else toast('Acknowledged ' + rule, 'good');
    requestSnapshot();
  }

  // ---------- messages ----------

  function payloadText(p) {
    if (!p) return '';
    if (typeof p.text === 'string') return p.text;
    if (typeof p.message === 'string') return p.message;
    return JSON.stringify(p);
  }

  async function loadMessages() {
    let r;
    try {
      r = await call('GET', '/api/dashboard/messages');
    } catch (e) {
      toast('Messages: ' + e.message, 'bad');
      return;
    }
    if (!r) return;
    if (r.error) {
      toast('Messages: ' + refusal(r), 'bad');
      return;
    }
    S.messages = r;
    const recent = r.recent.slice().reverse();
    $('messages-count').textContent = recent.length;
    fill('messages-body', 'messages-empty', recent.map((m) => el('tr', { dataset: { message: m.id } },
      el('td', { title: when(m.timestamp) }, stamp(m.timestamp)),
      cell(m.from),
      cell(m.to === null || m.to === undefined ? 'broadcast' : String(m.to)),
      cell(m.type || 'chat'),
      el('td', { class: 'trunc', title: m.id + '\n' + JSON.stringify(m.payload, null, 2) }, payloadText(m.payload)))));
    fill('mailboxes-body', 'mailboxes-empty', r.mailboxes.map((b) => el('tr', { dataset: { agent: b.agent_id } },
      cell(b.agent_id),
      cell(String(b.depth), { cls: 'num' + (b.depth >= 100 ? ' bad-text' : '') }),
      el('td', null, el('span', { class: 'state' }, el('span', { class: 'dot ' + (b.connected ? 'ok' : '') }), b.connected ? 'yes' : 'no')))));
    $('channels-count').textContent = r.channels_total;
    $('channels-empty').hidden = r.channels.length > 0;
    $('channels-list').replaceChildren(...r.channels.map((c) => el('article', { class: 'channel', dataset: { channel: c.name } },
      el('h3', null, '#' + c.name, c.description ? el('span', { class: 'muted' }, ' · ' + c.description) : null),
      el('div', { class: 'members' }, ...(c.members.length ? c.members.map((m) => el('span', { class: 'tag info', text: m })) : [el('span', { class: 'muted' }, 'no members')])),
      el('ol', { class: 'events' }, ...c.history.slice().reverse().map((e) => el('li', { title: when(e.message.timestamp) },
        clock(e.message.timestamp) + ' ' + e.message.from + ': ' + payloadText(e.message.payload)))))));
  }

  // ---------- theme ----------

  const THEME_KEY = 'agentcom.theme';

  function applyTheme(t) {
    document.documentElement.dataset.theme = t;
    $('btn-theme').textContent = t === 'light' ? 'Dark' : 'Light';
    drawCharts();
  }

  function initTheme() {
    let t = localStorage.getItem(THEME_KEY);
    if (t !== 'light' && t !== 'dark') t = window.matchMedia && window.matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
    applyTheme(t);
  }

  function toggleTheme() {
    const t = document.documentElement.dataset.theme === 'light' ? 'dark' : 'light';
    localStorage.setItem(THEME_KEY, t);
    applyTheme(t);
  }

  // ---------- keyboard ----------

  function visibleRows() {
    const v = S.route ? S.route.view : 'overview';
    const sel = v === 'tasks' ? '#tasks-body tr' : v === 'messages' ? '#messages-body tr' : v === 'alerts' ? '#alerts-active tr'
      : '#view-overview tr.clickable';
    return [...document.querySelectorAll(sel)].filter((r) => r.offsetParent !== null);
  }

  function moveCursor(delta) {
    const rows = visibleRows();
    if (!rows.length) return;
    S.cursor = Math.max(0, Math.min(rows.length - 1, S.cursor + delta));
    for (const r of document.querySelectorAll('tr.cursor')) r.classList.remove('cursor');
    const r = rows[S.cursor];
    r.classList.add('cursor');
    r.scrollIntoView({ block: 'nearest' });
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const tag = ev.target && ev.target.tagName;
    const typing = tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA';
    if (document.querySelector('dialog[open]')) return;
    if (typing) {
      if (ev.key === 'Escape') ev.target.blur();
      return;
    }
    const go = { 1: '#/', 2: '#/tasks', 3: '#/alerts', 4: '#/messages' }[ev.key];
    if (go) { location.hash = go; return; }
    const cur = () => document.querySelector('tr.cursor');
    switch (ev.key) {
      case '/':
        ev.preventDefault();
        if (!S.route || S.route.view !== 'tasks') location.hash = '#/tasks';
        setTimeout(() => $('tasks-q').focus(), 0);
        break;
      case 'j': moveCursor(1); break;
      case 'k': moveCursor(-1); break;
      case 'Enter': {
        const r = cur();
        if (r && r.dataset.task) openTask(r.dataset.task);
        break;
      }
      case 'x': {
        const box = cur() && cur().querySelector('input.pick');
        if (box && S.canAct) { box.checked = !box.checked; toggleSelected(box.dataset.task, box.checked); }
        break;
      }
      case '[': if (S.route && S.route.view === 'tasks') page(-1); break;
      case ']': if (S.route && S.route.view === 'tasks') page(1); break;
      case 'Escape':
        if (S.route && S.route.view === 'task') history.length > 1 && S.cameFromList ? history.back() : (location.hash = '#/tasks');
        break;
      case 'r': route(); requestSnapshot(); break;
      case 't': toggleTheme(); break;
      case '?': $('help-dialog').showModal(); break;
      default: return;
    }
  }

  function initViews() {
    const form = $('task-filters');
    form.addEventListener('submit', (ev) => { ev.preventDefault(); setFilters(); });
    form.addEventListener('change', (ev) => { if (ev.target.name !== 'q') setFilters(); });
    let qTimer = null;
    $('tasks-q').addEventListener('input', () => {
      clearTimeout(qTimer);
      qTimer = setTimeout(() => setFilters(), 300);
    });
    $('filters-clear').addEventListener('click', () => { form.reset(); location.hash = '#/tasks'; });
    $('page-prev').addEventListener('click', () => page(-1));
    $('page-next').addEventListener('click', () => page(1));
    $('tasks-all').addEventListener('change', (ev) => {
      const on = ev.target.checked;
      for (const p of document.querySelectorAll('#tasks-body input.pick')) {
        p.checked = on;
        if (on) S.selected.add(p.dataset.task);
        else S.selected.delete(p.dataset.task);
      }
      updateSelection();
    });
    $('bulk-retry').addEventListener('click', () => bulk('retry'));
    $('bulk-cancel').addEventListener('click', () => bulk('cancel'));
    $('task-retry').addEventListener('click', () => taskAction('retry'));
    $('task-cancel').addEventListener('click', () => taskAction('cancel'));
    $('messages-refresh').addEventListener('click', loadMessages);
    $('btn-theme').addEventListener('click', toggleTheme);
    $('btn-help').addEventListener('click', () => $('help-dialog').showModal());
    $('chart-range').addEventListener('change', () => loadSeries(true));
    document.addEventListener('keydown', onKey);
    window.addEventListener('hashchange', () => {
      S.cameFromList = S.route && S.route.view === 'tasks';
      if (/(?:^#|&)token=/.test(location.hash)) return;
      document.title = 'AgentCom Command Center';
      route();
    });
  }

  // onTaskEvents keeps the open views current: the task view reloads on
  // its task's events, the list at most every 3 s.
  function onTaskEvents(ids) {
    if (!S.route) return;
    if (S.route.view === 'task' && ids.has(S.route.id)) showTask(S.route.id);
    if (S.route.view === 'tasks' && !S.tasksReload) {
      S.tasksReload = setTimeout(() => { S.tasksReload = null; loadTasks(); }, 3000);
    }
  }

  // ---------- wiring ----------

  function initControls() {
    $('health-badge').addEventListener('click', () => {
      const list = $('health-conditions');
      const show = list.hidden && list.children.length > 0;
      list.hidden = !show;
      $('health-badge').setAttribute('aria-expanded', String(show));
    });
    $('recent-filter').addEventListener('input', (ev) => {
      S.recentFilter = ev.target.value;
      if (S.snap) renderRecent(S.snap);
    });
    for (const th of document.querySelectorAll('#panel-recent th[data-sort]')) {
      th.addEventListener('click', () => {
        const key = th.dataset.sort;
        S.recentSort = S.recentSort.key === key ? { key, dir: -S.recentSort.dir } : { key, dir: 1 };
        if (S.snap) renderRecent(S.snap);
      });
    }
    $('timeline-close').addEventListener('click', () => {
      S.selectedAgent = null;
      $('timeline').hidden = true;
      for (const tr of document.querySelectorAll('#agents-body tr')) tr.classList.remove('selected');
    });
    $('btn-backup').addEventListener('click', backupNow);
    $('pause-cap-btn').addEventListener('click', () => {
      const cap = $('pause-cap').value.trim();
      if (!cap) return;
      act({ type: 'pause', capability: cap }, (r) => {
        const ok = r.type === 'pause_result' && r.status !== 'error';
        toast(ok ? 'capability ' + cap + ' ' + r.status : 'Pause ' + cap + ': ' + (r.error || r.status), ok ? 'good' : 'bad');
        $('pause-cap').value = '';
        requestSnapshot();
      });
    });
    $('btn-compact-all').addEventListener('click', () => compact(''));
    window.addEventListener('resize', () => drawCharts());
    // The chart history moves on by the minute.
    setInterval(() => { if (!$('view-overview').hidden) loadSeries(true); }, 30000);
    // Relative times and ages move on without new data.
    setInterval(() => {
      if (S.route && S.route.view === 'task' && S.taskView && S.taskView.status === 'assigned') renderLive(S.taskView);
      if (!S.snap) return;
      S.snap.uptime_ms += 5000;
      render();
    }, 5000);
  }

  async function start() {
    if (await checkAuth()) connect();
  }

  document.addEventListener('DOMContentLoaded', () => {
    tokenFromFragment();
    initTheme();
    initTokenDialog();
    initControls();
    initViews();
    route();
    initPush();
    start();
  });
})();
