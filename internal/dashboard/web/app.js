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

  function clock(ms) {
    if (!ms) return '--';
    return new Date(ms).toLocaleTimeString();
  }

  function stamp(ms) {
    if (!ms) return '--';
    const d = new Date(ms);
    return d.toLocaleDateString() + ' ' + d.toLocaleTimeString();
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
      body.replaceChildren(...rows);
      body.dataset.rendered = html;
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
      text = 'Critical -- ' + (c ? c.text : '');
    }
    $('health-text').textContent = text;
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
        ? el('span', { title: a.current_task_id }, trunc(a.current_task_description || a.current_task_id, 40))
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
      el('td', null, task),
      cell(caps.length ? caps.join(', ') : '--'),
      el('td', { title: stamp(a.connected_at) }, rel(a.connected_at)),
      el('td', { title: stamp(a.last_seen) }, rel(a.last_seen)),
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
    const rows = (s.queued_tasks || []).map((t, i) => el('tr', { dataset: { task: t.id } },
      cell(String(i + 1), { cls: 'num' }),
      el('td', { title: t.id + (t.description ? '\n' + t.description : '') }, trunc(t.description || t.id, 50),
        t.not_before && t.not_before > Date.now() ? el('span', { class: 'tag warn', text: 'backoff' }) : null),
      el('td', null, el('span', { class: 'tag ' + laneTag(t.priority), text: t.lane }),
        t.paused ? el('span', { class: 'tag warn', text: 'paused', title: 'held by a paused lane or capability' }) : null),
      cell(t.submitted_by || '--'),
      el('td', { title: stamp(t.created_at) }, rel(t.created_at)),
      el('td', null, cancelButton(t.id))));
    fill('queued-body', 'queued-empty', rows);
  }

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
    const rows = pending.map((t) => el('tr', { dataset: { task: t.id } },
      el('td', { title: t.id + (t.description ? '\n' + t.description : '') }, trunc(t.description || t.id, 40)),
      el('td', null, el('span', { class: 'tag ' + (t.status === 'waiting' ? 'info' : ''), text: t.status })),
      cell(t.lane),
      t.status === 'scheduled'
        ? el('td', { title: stamp(t.run_at) }, stamp(t.run_at))
        : el('td', { title: (t.depends_on || []).join('\n') }, (t.depends_on || []).length + ' task(s)'),
      el('td', null, cancelButton(t.id))));
    fill('pending-body', 'pending-empty', rows);
    const sched = (s.schedules || []).map((x) => el('tr', null,
      cell(x.name),
      el('td', { title: x.timezone }, x.cron + ' (' + x.timezone + ')'),
      el('td', null, el('span', { class: 'tag ' + (x.error ? 'bad' : x.paused ? 'warn' : 'good'),
        text: x.error ? 'error' : x.paused ? 'paused' : 'active', title: x.error || '' })),
      el('td', { title: x.next_run ? stamp(x.next_run) : '' }, x.next_run ? stamp(x.next_run) : '--'),
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
            toast(r.kind + ' ' + r.name + ' ' + (r.status === 'unchanged' ? 'unchanged' : r.status), 'good');
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

  function laneTag(p) { return ['bad', 'warn', 'info', ''][p] || ''; }

  function renderRunning(s) {
    const list = s.running_tasks || [];
    $('running-count').textContent = list.length;
    const now = Date.now();
    const rows = list.map((t) => el('tr', { dataset: { task: t.id } },
      el('td', { title: t.id }, trunc(t.description || t.id, 50)),
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
    fill('recent-body', 'recent-empty', rows.map((r) => el('tr', { dataset: { task: r.task_id } },
      el('td', { title: r.task_id + (r.description ? '\n' + r.description : '') }, trunc(r.description || r.task_id, 45)),
      cell(r.agent_id || '--'),
      el('td', { title: r.error }, el('span', { class: 'tag ' + (r.status === 'completed' ? 'good' : 'bad'), text: r.status })),
      cell(dur(r.duration_ms), { cls: 'num' }),
      cell(String(r.tokens_used || 0), { cls: 'num' }),
      el('td', { title: stamp(r.at) }, rel(r.at)))));
  }

  function renderDeadLetter(s) {
    const list = s.dead_letter_tasks || [];
    $('dl-count').textContent = s.queue ? s.queue.dead_letter : list.length;
    fill('dl-body', 'dl-empty', list.map((t) => el('tr', { dataset: { task: t.id } },
      el('td', { title: t.id + (t.description ? '\n' + t.description : '') }, trunc(t.description || t.id, 30)),
      el('td', { title: t.last_error || '' }, trunc(t.last_error || '--', 40)),
      cell(String(t.retry_count || 0), { cls: 'num' }),
      el('td', { title: stamp(t.updated_at) }, rel(t.updated_at || t.created_at)),
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
        el('td', { title: stamp(t.last_backup_at) }, rel(t.last_backup_at)),
        el('td', { title: stamp(t.last_verified_backup_at) }, rel(t.last_verified_backup_at)),
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
          el('td', { title: stamp(run.timestamp) }, clock(run.timestamp)),
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
      return el('li', { class: bad ? 'bad' : e.type === 'recovery_complete' ? 'warn' : 'good', title: stamp(e.timestamp) },
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

  function axis(ctx, w, h, max, pad) {
    ctx.strokeStyle = '#2a2a3a';
    ctx.fillStyle = '#8a8aa0';
    ctx.font = '10px system-ui, sans-serif';
    ctx.lineWidth = 1;
    const marks = max >= 2 ? [0, Math.round(max / 2), max] : [0, max];
    for (const v of marks) {
      const y = pad.t + (h - pad.t - pad.b) * (1 - v / max);
      ctx.beginPath();
      ctx.moveTo(pad.l, y + 0.5);
      ctx.lineTo(w - pad.r, y + 0.5);
      ctx.stroke();
      ctx.fillText(String(v), 2, y + 3);
    }
    ctx.fillText('-60m', pad.l, h - 2);
    ctx.fillText('now', w - pad.r - 18, h - 2);
  }

  function drawCharts() {
    const s = S.snap;
    if (!s || !s.series) return;
    const sr = s.series;
    const pad = { l: 26, r: 6, t: 8, b: 14 };
    {
      const { ctx, w, h } = prepCanvas($('chart-throughput'));
      const n = sr.completed.length;
      let max = 1;
      for (let i = 0; i < n; i++) max = Math.max(max, sr.completed[i] + sr.failed[i]);
      axis(ctx, w, h, max, pad);
      const bw = (w - pad.l - pad.r) / n;
      const ph = h - pad.t - pad.b;
      for (let i = 0; i < n; i++) {
        const x = pad.l + i * bw;
        const hc = (sr.completed[i] / max) * ph;
        const hf = (sr.failed[i] / max) * ph;
        ctx.fillStyle = '#4ade80';
        ctx.fillRect(x + 0.5, pad.t + ph - hc, Math.max(bw - 1, 1), hc);
        ctx.fillStyle = '#ef4444';
        ctx.fillRect(x + 0.5, pad.t + ph - hc - hf, Math.max(bw - 1, 1), hf);
      }
    }
    {
      const { ctx, w, h } = prepCanvas($('chart-depth'));
      const d = sr.queue_depth;
      let max = 1;
      for (const v of d) if (v !== null && v > max) max = v;
      axis(ctx, w, h, max, pad);
      const n = d.length;
      const step = (w - pad.l - pad.r) / Math.max(n - 1, 1);
      const ph = h - pad.t - pad.b;
      ctx.strokeStyle = '#7eb8da';
      ctx.lineWidth = 2;
      ctx.beginPath();
      let started = false;
      for (let i = 0; i < n; i++) {
        if (d[i] === null) continue;
        const x = pad.l + i * step;
        const y = pad.t + ph - (d[i] / max) * ph;
        if (!started) { ctx.moveTo(x, y); started = true; } else ctx.lineTo(x, y);
      }
      ctx.stroke();
      for (let i = n - 1; i >= 0; i--) {
        if (d[i] === null) continue;
        ctx.fillStyle = '#7eb8da';
        ctx.beginPath();
        ctx.arc(pad.l + i * step, pad.t + ph - (d[i] / max) * ph, 3, 0, 2 * Math.PI);
        ctx.fill();
        break;
      }
    }
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
      el('span', { title: stamp(e.timestamp) }, clock(e.timestamp)),
      el('span', { class: 'kind' }, e.kind),
      el('span', null, e.event + (e.task_id ? ' ' + e.task_id : '') + (e.detail ? ' -- ' + e.detail : '')))));
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

  function touch() { $('last-update').textContent = new Date().toLocaleTimeString(); }

  function onFrame(msg) {
    if (msg.ref && S.pending.has(msg.ref)) {
      const cb = S.pending.get(msg.ref);
      S.pending.delete(msg.ref);
      cb(msg);
      if (msg.type !== 'error') return;
    }
    switch (msg.type) {
      case 'hello':
        S.role = msg.role;
        S.canAct = !!msg.can_act;
        document.body.classList.toggle('viewer', !S.canAct);
        $('role-badge').hidden = false;
        $('role-badge').textContent = S.canAct ? (msg.role === 'admin' ? 'admin' : msg.role) : 'read-only';
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
    for (const e of events) {
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
          toast('Alert: ' + (e.message || e.alert), 'bad');
          break;
        default:
          refresh = true;
      }
    }
    if (refresh) requestSnapshot();
    if (timeline) requestTimeline();
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
    if (r.status === 401 || r.status === 403) {
      S.authFailures++;
      askToken(r.status === 403 ? 'This token may not open the dashboard (it needs a viewer or admin role).'
        : token() ? 'The hub refused this token.' : '');
      return null;
    }
    if (!r.ok) throw new Error(method + ' ' + path + ': ' + r.status);
    return r.json();
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
        toast(r.type === 'pause_result' && r.status !== 'error' ? 'capability ' + cap + ' ' + r.status : 'Pause ' + cap + ': ' + (r.error || r.status), r.status === 'error' || r.type === 'error' ? 'bad' : 'good');
        $('pause-cap').value = '';
        requestSnapshot();
      });
    });
    $('btn-compact-all').addEventListener('click', () => compact(''));
    window.addEventListener('resize', () => drawCharts());
    // Relative times and ages move on without new data.
    setInterval(() => {
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
    initTokenDialog();
    initControls();
    initPush();
    start();
  });
})();
