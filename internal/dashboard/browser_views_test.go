package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// viewShot saves what a 1400×900 screen shows of the page.
func viewShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir, err := artifactDir(t)
	if err != nil {
		t.Fatalf("screenshot dir: %v", err)
	}
	// Let a toast or a redraw settle; nothing is asserted on this wait.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 900), chromedp.Sleep(150*time.Millisecond)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, "dashboard-"+name+".png")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot saved: %s", path)
}

// timezone makes the page run in the IANA zone id, whatever the host's.
func timezone(id string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: id})
		return chromedp.Void{}, err
	}
}

func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 900), chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
}

func evalJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](expr)); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
}

// checkConsole fails the test on a page exception or console error, but
// for those containing one of the expected texts.
func checkConsole(t *testing.T, console func() []chromedp.ConsoleMessage, expected ...string) {
	t.Helper()
	for _, m := range console() {
		if m.IsException() || m.Type == chromedp.ConsoleError {
			if strings.Contains(m.Text, "favicon") || slices.ContainsFunc(expected, func(e string) bool { return strings.Contains(m.Text, e) }) {
				continue
			}
			t.Errorf("page console: %s", m.String())
		}
	}
}

// deadLetterVia fails a task on agent a until it is dead-lettered.
func deadLetterVia(t *testing.T, h *hubtest.Hub, a *hubtest.Client, desc string) string {
	t.Helper()
	id := submit(t, h, map[string]any{"description": desc, "needed_capabilities": []string{"code"}, "max_retries": 1})
	as := a.Expect("task_assign")
	if as["task_id"] != id {
		t.Fatalf("assigned %v, want %s", as["task_id"], id)
	}
	a.Send(map[string]any{"type": "task_accepted", "task_id": id})
	a.Expect("task_ack")
	a.Send(map[string]any{"type": "task_failed", "task_id": id, "generation": as["generation"], "error": "exit 2: " + desc + " broke"})
	a.Expect("task_ack")
	return id
}

// TestBrowserOperatorViews drives the task list, the task view, bulk
// retry, alerts and messages in headless Chromium against a real hub,
// restarts the hub and checks the charts kept their points, and saves a
// screenshot of each main view at 1400×900.
func TestBrowserOperatorViews(t *testing.T) {
	ctx, console := browser(t)
	h, _ := startHub(t, func(c *hub.Config) { c.AlertInterval = 100 * time.Millisecond })
	if st, body := h.Do("PUT", "/api/config/alerts", h.AdminToken, map[string]any{"rules": map[string]any{
		"no_idle_agent": map[string]any{"enabled": true, "severity": "warning", "for_seconds": 0}}}); st != 200 {
		t.Fatalf("alert config: %d %v", st, body)
	}

	a := h.Agent("worker-1", "code")
	done := submit(t, h, map[string]any{"description": "Refactor the scheduler so lanes never starve each other. " + strings.Repeat("This description goes on and on. ", 8),
		"needed_capabilities": []string{"code"}, "metadata": map[string]any{"repo": "agentcom"}})
	runTask(t, a, true)
	d1 := deadLetterVia(t, h, a, "Flaky migration 0042")
	d2 := deadLetterVia(t, h, a, "Flaky migration 0043")
	a.Close()
	// Work nobody can take: 30 tasks to page through, and an alert.
	var parked []string
	for i := range 30 {
		parked = append(parked, submit(t, h, map[string]any{"description": fmt.Sprintf("Render frame batch %02d", i),
			"needed_capabilities": []string{"gpu"}, "priority": []string{"high", "low", "normal"}[i%3]}))
	}
	ops := h.Token("ops", auth.RoleAgent)
	h.Do("POST", "/api/message", ops, map[string]any{"to": "worker-1", "payload": map[string]any{"text": "please pick up the gpu queue"}})
	h.Do("POST", "/api/channels", ops, map[string]any{"name": "builds", "description": "CI results"})
	h.Do("POST", "/api/channels/builds/subscribe", ops, map[string]any{})
	h.Do("POST", "/api/channels/builds/publish", ops, map[string]any{"payload": map[string]any{"text": "main is green"}})

	// Overview: the header reflects the active alert; the role is real.
	// The browser runs in India (UTC+5:30), so local and UTC times differ.
	if err := chromedp.Do(ctx, timezone("Asia/Kolkata")); err != nil {
		t.Fatal(err)
	}
	navigate(t, ctx, h.URL()+"/dashboard")
	waitJS(t, ctx, "connected", `document.getElementById('conn-text').textContent === 'Connected'`)
	waitJS(t, ctx, "the role", `document.getElementById('role-badge').textContent === 'admin'`)
	// Times: 24-hour in the browser's zone, UTC on hover.
	waitJS(t, ctx, "a 24-hour local clock with UTC on hover", `(() => {
		const e = document.getElementById('last-update');
		const m = /^\d{4}-\d\d-\d\d (\d\d):(\d\d):(\d\d) UTC$/.exec(e.title);
		if (!m || !/^\d\d:\d\d:\d\d$/.test(e.textContent)) return false;
		const [h, mi] = e.textContent.split(':').map(Number);
		const local = h * 60 + mi, utc = Number(m[1]) * 60 + Number(m[2]);
		return (local - utc + 1440) % 1440 === 330;
	})()`)
	waitJS(t, ctx, "the alert in the header", `document.getElementById('health-text').textContent !== 'Healthy' && !document.getElementById('alerts-count').hidden`)
	waitJS(t, ctx, "the charts", `Number(document.getElementById('chart-throughput').dataset.points) >= 1`)
	waitJS(t, ctx, "a one-line description", `(() => { const td = document.querySelector('#recent-body tr[data-task="`+done+`"] td.trunc');
		return td && td.scrollWidth > td.clientWidth && td.getBoundingClientRect().height < 40 && td.title.includes('goes on and on'); })()`)
	viewShot(t, ctx, "overview")

	// Open a task from the list.
	click(t, ctx, `#recent-body tr[data-task="`+done+`"]`)
	waitJS(t, ctx, "the task view", `location.hash === '#/tasks/`+done+`' && !document.getElementById('view-task').hidden &&
		document.getElementById('task-desc').textContent.includes('goes on and on') &&
		document.querySelectorAll('#task-attempts tr').length === 1 && document.getElementById('task-attempts').textContent.includes('worker-1')`)
	waitJS(t, ctx, "its metadata", `document.getElementById('task-metadata').textContent.includes('agentcom')`)
	waitJS(t, ctx, "the agent's timeline of the task", `[...document.querySelectorAll('#task-timeline li')].some(li => li.textContent.includes('worker-1 · task_completed'))`)
	viewShot(t, ctx, "task")

	// Filter the list: dead letter only, then by text.
	navigate(t, ctx, h.URL()+"/dashboard#/tasks")
	waitJS(t, ctx, "all tasks", `document.getElementById('tasks-total').textContent === '33'`)
	evalJS(t, ctx, `(() => { const s = document.querySelector('#task-filters select[name=status]'); s.value = 'dead_letter'; s.dispatchEvent(new Event('change', {bubbles: true})); })()`)
	waitJS(t, ctx, "the dead letter filtered on the server", `location.hash.includes('status=dead_letter') && document.getElementById('tasks-total').textContent === '2' &&
		document.querySelectorAll('#tasks-body tr').length === 2`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#tasks-q"), "0043")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the text filter", `document.querySelectorAll('#tasks-body tr').length === 1 && !!document.querySelector('#tasks-body tr[data-task="`+d2+`"]')`)

	// Page through the parked tasks, 25 at a time.
	navigate(t, ctx, h.URL()+"/dashboard#/tasks?status=queued&limit=25")
	waitJS(t, ctx, "the first page", `document.getElementById('page-info').textContent === '1–25 of 30' && document.querySelectorAll('#tasks-body tr').length === 25`)
	click(t, ctx, "#page-next")
	waitJS(t, ctx, "the second page", `document.getElementById('page-info').textContent === '26–30 of 30' && document.querySelectorAll('#tasks-body tr').length === 5 && location.hash.includes('offset=25')`)
	viewShot(t, ctx, "tasks")

	// Bulk retry of both dead-letter tasks.
	navigate(t, ctx, h.URL()+"/dashboard#/tasks?status=dead_letter")
	waitJS(t, ctx, "the dead letter", `document.querySelectorAll('#tasks-body tr').length === 2`)
	click(t, ctx, "#tasks-all")
	waitJS(t, ctx, "the bulk button", `!document.getElementById('bulk-retry').disabled && document.getElementById('tasks-selected').textContent === '2 selected'`)
	click(t, ctx, "#bulk-retry")
	waitJS(t, ctx, "the confirmation", `document.getElementById('confirm-dialog').open && document.getElementById('confirm-detail').textContent.includes('`+d1+`')`)
	click(t, ctx, "#confirm-ok")
	waitJS(t, ctx, "the retried tasks gone from the dead letter", `document.querySelectorAll('#tasks-body tr').length === 0 &&
		[...document.querySelectorAll('#toasts .toast')].some(e => e.textContent.includes('Requeued 2'))`)
	for _, id := range []string{d1, d2} {
		st, body := h.Do("GET", "/api/tasks/"+id, h.AdminToken, nil)
		if st != 200 || body["status"] != "queued" {
			t.Fatalf("%s after the bulk retry: %d %v", id, st, body["status"])
		}
	}

	// A deep link opens a task view directly, in a fresh page load.
	navigate(t, ctx, h.URL()+"/dashboard#/tasks/"+parked[0])
	waitJS(t, ctx, "the deep-linked task", `!document.getElementById('view-task').hidden && document.getElementById('task-title').textContent === 'Render frame batch 00' &&
		!document.getElementById('task-cancel').hidden && document.getElementById('task-retry').hidden`)
	evalJS(t, ctx, `location.hash = '#/tasks/task-0000000000000000'`)
	waitJS(t, ctx, "an unknown task said so", `!document.getElementById('task-error').hidden &&
		document.getElementById('task-error').textContent.includes('No task task-0000000000000000') && document.getElementById('task-body').hidden &&
		document.getElementById('task-cancel').hidden`)
	evalJS(t, ctx, `location.hash = '#/tasks/%E0%A4%A'`) // a malformed escape must not break the page
	waitJS(t, ctx, "a malformed link handled", `!document.getElementById('task-error').hidden`)

	// A running task's output shows live in its view, then the end.
	w := h.Agent("worker-2", "shell")
	live := submit(t, h, map[string]any{"description": "Run the migration", "needed_capabilities": []string{"shell"}})
	as := w.Expect("task_assign")
	w.Send(map[string]any{"type": "task_accepted", "task_id": live})
	w.Expect("task_ack")
	w.Send(map[string]any{"type": "task_progress", "task_id": live, "output": "step 1: schema checked\n"})
	navigate(t, ctx, h.URL()+"/dashboard#/tasks/"+live)
	waitJS(t, ctx, "the first output", `document.getElementById('task-log').textContent.includes('step 1: schema checked') &&
		document.getElementById('task-log-state').textContent.includes('live') && !document.getElementById('task-live-wrap').hidden`)
	w.Send(map[string]any{"type": "task_progress", "task_id": live, "output": "step 2: 42 rows moved\n"})
	waitJS(t, ctx, "more output, as it came", `document.getElementById('task-log').textContent.includes('step 1: schema checked\nstep 2: 42 rows moved')`)
	viewShot(t, ctx, "task-live")
	w.Send(map[string]any{"type": "task_complete", "task_id": live, "generation": as["generation"], "result": map[string]any{"status": "success"},
		"usage": map[string]any{"total_tokens": 1500, "cost_usd": 0.0123}})
	w.Expect("task_ack")
	waitJS(t, ctx, "the end of the output", `document.getElementById('task-log-state').textContent.includes('ended') &&
		document.getElementById('task-meta').textContent.includes('1500 tokens, $0.0123') &&
		document.getElementById('task-live-wrap').hidden && document.getElementById('task-status').textContent === 'completed'`)
	w.Close()

	// Acknowledge the alert.
	navigate(t, ctx, h.URL()+"/dashboard#/alerts")
	waitJS(t, ctx, "the active alert", `!!document.querySelector('#alerts-active tr[data-rule="no_idle_agent"] button.ack')`)
	viewShot(t, ctx, "alerts")
	click(t, ctx, `#alerts-active tr[data-rule="no_idle_agent"] button.ack`)
	waitJS(t, ctx, "the acknowledgement", `(() => { const r = document.querySelector('#alerts-active tr[data-rule="no_idle_agent"]');
		return r && r.textContent.includes('by local-operator') && !r.querySelector('button.ack'); })()`)
	waitJS(t, ctx, "the header calm again", `!document.getElementById('health-text').textContent.includes('Alert')`)

	// Messages: recent, channels with members and history, mailboxes.
	click(t, ctx, `.tabs a[data-view="messages"]`)
	waitJS(t, ctx, "the messages", `document.getElementById('messages-body').textContent.includes('please pick up the gpu queue') &&
		document.querySelector('#channels-list [data-channel="builds"]').textContent.includes('main is green') &&
		document.querySelector('#channels-list [data-channel="builds"] .members').textContent.includes('ops') &&
		document.querySelector('#mailboxes-body tr[data-agent="worker-1"]').textContent.includes('1')`)
	viewShot(t, ctx, "messages")

	// Keyboard: 2 opens the tasks, j moves, Enter opens the row's task.
	evalJS(t, ctx, `document.activeElement && document.activeElement.blur()`)
	if err := chromedp.Do(ctx, chromedp.KeyEvent("2")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the tasks by keyboard", `!document.getElementById('view-tasks').hidden && document.querySelectorAll('#tasks-body tr').length > 0`)
	if err := chromedp.Do(ctx, chromedp.KeyEvent("j"), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "a task opened by keyboard", `!document.getElementById('view-task').hidden`)

	// Light theme, kept across a reload.
	navigate(t, ctx, h.URL()+"/dashboard")
	waitJS(t, ctx, "connected", `document.getElementById('conn-text').textContent === 'Connected'`)
	// The first theme follows the system's preference; the button flips
	// it and the choice is kept. Both themes get a picture.
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.dataset.theme`))
	if err != nil || (first != "light" && first != "dark") {
		t.Fatalf("theme %q: %v", first, err)
	}
	other := map[string]string{"light": "dark", "dark": "light"}[first]
	viewShot(t, ctx, "overview-"+first)
	click(t, ctx, "#btn-theme")
	waitJS(t, ctx, "the other theme", fmt.Sprintf(`document.documentElement.dataset.theme === %q && localStorage.getItem('agentcom.theme') === %q`, other, other))
	waitJS(t, ctx, "the charts", `Number(document.getElementById('chart-throughput').dataset.points) >= 1`)
	viewShot(t, ctx, "overview-"+other)

	// The hub restarts: the charts come back with their points.
	h.Restart()
	waitJS(t, ctx, "connected again", `document.getElementById('conn-text').textContent === 'Connected'`)
	navigate(t, ctx, h.URL()+"/dashboard")
	waitJS(t, ctx, "connected after the restart", `document.getElementById('conn-text').textContent === 'Connected'`)
	waitJS(t, ctx, "the charts after the restart", `Number(document.getElementById('chart-throughput').dataset.points) >= 1 &&
		Number(document.getElementById('chart-depth').dataset.points) >= 1 && document.documentElement.dataset.theme === '`+other+`'`)
	// The unknown task's lookups answered 404, which Chromium logs.
	checkConsole(t, console, "status of 404 (Not Found)")
}

// TestBrowserViewerSession: a viewer token sees every view but no action
// control, and the badge says viewer.
func TestBrowserViewerSession(t *testing.T) {
	ctx, console := browser(t)
	h, _ := startHub(t, func(c *hub.Config) { c.DashboardToken = true })
	viewer := h.Token("wall-screen", auth.RoleViewer)
	a := h.Agent("worker-1", "code")
	dead := deadLetterVia(t, h, a, "Flaky migration")
	parked := submit(t, h, map[string]any{"description": "parked", "needed_capabilities": []string{"gpu"}})

	navigate(t, ctx, h.URL()+"/dashboard#token="+viewer)
	waitJS(t, ctx, "connected", `document.getElementById('conn-text').textContent === 'Connected'`)
	waitJS(t, ctx, "the viewer badge", `document.getElementById('role-badge').textContent === 'viewer' && document.body.classList.contains('viewer')`)
	waitJS(t, ctx, "the queue", rowJS("queued-body", "task", parked)+` && `+rowJS("dl-body", "task", dead))
	visibleActs := `[...document.querySelectorAll('.act, button.retry, button.cancel, button.ack, input.pick')].filter(e => e.getClientRects().length > 0).map(e => e.id || e.className)`
	noActs := visibleActs + `.length === 0`
	waitJS(t, ctx, "no action controls on the overview", noActs)
	evalJS(t, ctx, `location.hash = '#/tasks'`)
	waitJS(t, ctx, "the list", `document.querySelectorAll('#tasks-body tr').length === 2`)
	waitJS(t, ctx, "no action controls on the list", noActs)
	viewShot(t, ctx, "viewer-tasks")
	evalJS(t, ctx, `location.hash = '#/tasks/`+dead+`'`)
	waitJS(t, ctx, "the task", `document.getElementById('task-last-error').textContent.includes('Flaky migration broke')`)
	waitJS(t, ctx, "no action controls on the task", noActs)
	// The server refuses a viewer's bulk action whatever the page shows.
	if st, _ := h.Do("POST", "/api/dashboard/tasks/bulk", viewer, map[string]any{"action": "retry", "task_ids": []string{dead}}); st != 403 {
		t.Fatalf("viewer bulk retry: %d", st)
	}
	checkConsole(t, console)
}
