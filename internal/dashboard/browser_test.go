package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/testenv"
)

// chromiumPath is where Debian's chromium lives; AGENTCOM_CHROMIUM
// overrides it.
func chromiumPath() string {
	if p := os.Getenv("AGENTCOM_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// browser starts headless Chromium with a fresh profile and returns a tab
// context, and the console messages the page wrote.
func browser(t *testing.T) (context.Context, func() []chromedp.ConsoleMessage) {
	t.Helper()
	exe := chromiumPath()
	if _, err := os.Stat(exe); err != nil {
		testenv.Missing(t, "chromium at "+exe, "apt-get install -y chromium, or set AGENTCOM_CHROMIUM")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		acancel()
		t.Fatalf("start chromium: %v", err)
	}
	var (
		mu   sync.Mutex
		msgs []chromedp.ConsoleMessage
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		if err := chromedp.Cancel(ctx); err != nil {
			t.Logf("close chromium: %v", err)
		}
		cancel()
		acancel()
		wg.Wait()
	})
	return ctx, func() []chromedp.ConsoleMessage {
		mu.Lock()
		defer mu.Unlock()
		return append([]chromedp.ConsoleMessage(nil), msgs...)
	}
}

// waitJS polls a boolean expression in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	shot(t, ctx, "failure")
	t.Fatalf("page never showed %s (%s): %v", what, expr, lastErr)
}

// click clicks an element with the mouse, as a person would.
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	var err error
	// A live page may re-render the element between finding and clicking
	// it; find it again then.
	for range 5 {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = chromedp.Do(cctx, chromedp.Click(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	shot(t, ctx, "failure")
	t.Fatalf("click %s: %v", sel, err)
}

// shot saves a full-page screenshot under the test's artifact directory
// (kept with go test -artifacts) or AGENTCOM_ARTIFACTS, and logs where.
func shot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	dir, err := artifactDir(t)
	if err != nil {
		t.Logf("screenshot dir: %v", err)
		return ""
	}
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot: %v", err)
		return ""
	}
	path := filepath.Join(dir, "dashboard-"+name+".png")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Logf("screenshot: %v", err)
		return ""
	}
	t.Logf("screenshot saved: %s", path)
	return path
}

// artifactDir is where screenshots go: AGENTCOM_ARTIFACTS, else the
// test's artifact directory (kept with go test -artifacts).
func artifactDir(t *testing.T) (string, error) {
	dir := os.Getenv("AGENTCOM_ARTIFACTS")
	if dir == "" {
		dir = t.ArtifactDir()
	}
	return dir, os.MkdirAll(dir, 0o755)
}

func rowJS(body, attr, value string) string {
	return fmt.Sprintf(`!!document.querySelector('#%s tr[data-%s=%q]')`, body, attr, value)
}

// TestBrowserDashboard drives the real page in headless Chromium against a
// real hub: an agent appears, a task goes queued → running → done, a
// dead-letter task is retried with a click, and a compaction started from
// the page shows in the history.
func TestBrowserDashboard(t *testing.T) {
	ctx, console := browser(t)
	h, fs := startHub(t)
	if _, err := fs.Backup(t.Context()); err != nil {
		t.Fatal(err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL()+"/dashboard")); err != nil {
		t.Fatal(err)
	}
	if title, err := chromedp.Run(ctx, chromedp.Title()); err != nil || title != "AgentCom Command Center" {
		t.Fatalf("title %q: %v", title, err)
	}
	waitJS(t, ctx, "connected", `document.getElementById('conn-text').textContent === 'Connected'`)
	waitJS(t, ctx, "storage tables", `document.querySelectorAll('#storage-body tr').length === 9`)

	// An agent connects and appears.
	a := h.Agent("worker-1", "code")
	waitJS(t, ctx, "the agent", rowJS("agents-body", "agent", "worker-1"))
	waitJS(t, ctx, "the agent idle", `document.querySelector('#agents-body tr[data-agent="worker-1"]').textContent.includes('idle')`)

	// A task goes queued → running → done: the agent is busy with a first
	// task, so the second waits in the queue.
	first := submit(t, h, map[string]any{"description": "warm up", "needed_capabilities": []string{"code"}})
	as := a.Expect("task_assign")
	a.Send(map[string]any{"type": "task_accepted", "task_id": first})
	a.Expect("task_ack")
	task := submit(t, h, map[string]any{"description": "Refactor the scheduler", "needed_capabilities": []string{"code"}, "priority": "high"})
	waitJS(t, ctx, "the task queued", rowJS("queued-body", "task", task))
	waitJS(t, ctx, "the high lane count", `document.getElementById('lane-high').textContent === '1'`)
	a.Send(map[string]any{"type": "task_complete", "task_id": first, "generation": as["generation"], "result": map[string]any{}})
	a.Expect("task_ack")
	as = a.Expect("task_assign")
	if as["task_id"] != task {
		t.Fatalf("assigned %v, want %s", as["task_id"], task)
	}
	a.Send(map[string]any{"type": "task_accepted", "task_id": task})
	a.Expect("task_ack")
	waitJS(t, ctx, "the task running", rowJS("running-body", "task", task)+` && !`+rowJS("queued-body", "task", task))
	waitJS(t, ctx, "the agent working on it", `document.querySelector('#agents-body tr[data-agent="worker-1"]').textContent.includes('working')`)
	a.Send(map[string]any{"type": "task_complete", "task_id": task, "generation": as["generation"], "result": map[string]any{}, "tokens_used": 1200})
	a.Expect("task_ack")
	waitJS(t, ctx, "the task done", rowJS("recent-body", "task", task)+` && !`+rowJS("running-body", "task", task)+
		` && document.querySelector('#recent-body tr[data-task="`+task+`"]').textContent.includes('completed')`)

	// A dead-letter task is retried with a click.
	dead := submit(t, h, map[string]any{"description": "Flaky migration", "needed_capabilities": []string{"code"}, "max_retries": 1})
	as = a.Expect("task_assign")
	a.Send(map[string]any{"type": "task_failed", "task_id": dead, "generation": as["generation"], "error": "migration 0042 failed: duplicate column"})
	a.Expect("task_ack")
	waitJS(t, ctx, "the dead-letter task", rowJS("dl-body", "task", dead))
	waitJS(t, ctx, "its last error", `document.querySelector('#dl-body tr[data-task="`+dead+`"]').textContent.includes('migration 0042')`)
	click(t, ctx, `#dl-body button.retry[data-task="`+dead+`"]`)
	as = a.Expect("task_assign")
	if as["task_id"] != dead {
		t.Fatalf("after the retry the agent got %v, want %s", as["task_id"], dead)
	}
	waitJS(t, ctx, "the dead letter emptied", `!`+rowJS("dl-body", "task", dead))
	waitJS(t, ctx, "the retried task running", rowJS("running-body", "task", dead))

	// A compaction started from the page appears in the history.
	click(t, ctx, `#storage-body button.compact-one[data-table="task_queue"]`)
	waitJS(t, ctx, "the compaction in the history", `[...document.querySelectorAll('#compaction-body tr[data-table="task_queue"]')].some(r => r.textContent.includes('compacted'))`)
	waitJS(t, ctx, "the toast", `[...document.querySelectorAll('#toasts .toast')].some(e => e.textContent.includes('Compaction of task_queue done'))`)

	// Restore shows the dry run in a confirmation dialog first.
	click(t, ctx, `#storage-body button.restore[data-table="agent_mailbox"]`)
	waitJS(t, ctx, "the dry run in the dialog", `document.getElementById('confirm-dialog').open && document.getElementById('confirm-detail').textContent.includes('agent_mailbox_2026-01-01T00-00-00.bbolt')`)
	fs.mu.Lock()
	early := len(fs.restores)
	fs.mu.Unlock()
	if early != 0 {
		t.Fatal("the dry run restored")
	}
	click(t, ctx, "#confirm-ok")
	waitJS(t, ctx, "the restore event", `[...document.querySelectorAll('#storage-events li')].some(e => e.textContent.includes('Restored agent_mailbox (manual) from agent_mailbox_2026-01-01T00-00-00.bbolt'))`)
	fs.mu.Lock()
	restores := fs.restores
	fs.mu.Unlock()
	if describe(restores) != `["agent_mailbox@agent_mailbox_2026-01-01T00-00-00.bbolt"]` {
		t.Fatalf("restores: %v", restores)
	}

	// Open the agent's timeline, let the charts draw, and keep a picture.
	click(t, ctx, `#agents-body tr[data-agent="worker-1"]`)
	waitJS(t, ctx, "the timeline", `document.querySelectorAll('#timeline-list li').length > 3`)
	waitJS(t, ctx, "the throughput", `document.getElementById('tp-completed').textContent === '2'`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('toasts').replaceChildren()`)); err != nil {
		t.Fatal(err)
	}
	path := shot(t, ctx, "final")
	if path == "" {
		t.Fatal("no screenshot saved")
	}

	// The page notices a hub restart and reconnects on its own.
	h.Restart()
	waitJS(t, ctx, "connected again", `document.getElementById('conn-text').textContent === 'Connected' && document.querySelector('#agents-body tr') === null`)

	for _, m := range console() {
		if m.IsException() || m.Type == chromedp.ConsoleError {
			if strings.Contains(m.Text, "favicon") {
				continue
			}
			t.Errorf("page console: %s", m.String())
		}
	}
}

// TestBrowserTokenPrompt: on a hub reachable beyond loopback the page asks
// for a token once, keeps it, and a viewer token only watches.
func TestBrowserTokenPrompt(t *testing.T) {
	ctx, console := browser(t)
	h := startRemoteHub(t)
	viewer := h.Token("wall-screen", auth.RoleViewer)
	id := submit(t, h, map[string]any{"description": "parked", "needed_capabilities": []string{"gpu"}})

	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL()+"/dashboard")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the token dialog", `document.getElementById('token-dialog').open`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token-input"), viewer)); err != nil {
		t.Fatal(err)
	}
	click(t, ctx, "#token-save")
	waitJS(t, ctx, "connected", `document.getElementById('conn-text').textContent === 'Connected'`)
	waitJS(t, ctx, "read-only mode", `document.body.classList.contains('viewer') && document.getElementById('role-badge').textContent === 'viewer'`)
	waitJS(t, ctx, "the queued task", rowJS("queued-body", "task", id))
	waitJS(t, ctx, "no cancel button for a viewer", `getComputedStyle(document.querySelector('#queued-body button.cancel')).display === 'none'`)
	waitJS(t, ctx, "the token kept", fmt.Sprintf(`localStorage.getItem('agentcom.dashboardToken') === %q`, viewer))

	// A reload does not ask again.
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "connected after reload", `document.getElementById('conn-text').textContent === 'Connected' && !document.getElementById('token-dialog').open`)
	shot(t, ctx, "viewer")
	for _, m := range console() {
		if m.IsException() {
			t.Errorf("page exception: %s", m.String())
		}
	}
}
