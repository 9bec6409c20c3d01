package dashboard_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserWorkflows: the page shows a paused lane and its held task,
// a task waiting for a dependency and a scheduled one, and a schedule.
func TestBrowserWorkflows(t *testing.T) {
	ctx, console := browser(t)
	h, _ := startHub(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL()+"/dashboard")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "connected", `document.getElementById('conn-text').textContent === 'Connected'`)

	if st, body := h.Do("POST", "/api/tasks/pause", h.AdminToken, map[string]any{"lane": "low"}); st != 200 {
		t.Fatalf("pause: %d %v", st, body)
	}
	low := submit(t, h, map[string]any{"description": "Nightly cleanup", "priority": "low"})
	waitJS(t, ctx, "the paused lane", `document.getElementById('paused-list').textContent === 'lane low'`)
	waitJS(t, ctx, "the held task tagged", rowJS("queued-body", "task", low)+
		` && document.querySelector('#queued-body tr[data-task="`+low+`"]').textContent.includes('paused')`)

	waiting := submit(t, h, map[string]any{"description": "Update the docs", "depends_on": []string{low}})
	later := submit(t, h, map[string]any{"description": "Release", "run_in": "2h"})
	waitJS(t, ctx, "the waiting task", rowJS("pending-body", "task", waiting)+
		` && document.querySelector('#pending-body tr[data-task="`+waiting+`"]').textContent.includes('waiting')`)
	waitJS(t, ctx, "the scheduled task", rowJS("pending-body", "task", later)+
		` && document.querySelector('#pending-body tr[data-task="`+later+`"]').textContent.includes('scheduled')`)

	// The task view links a task's upstream and downstream tasks.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL()+"/dashboard#/tasks/"+waiting)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the upstream link", `!!document.querySelector('#task-meta a.task-link[href="#/tasks/`+low+`"]')`)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL()+"/dashboard#/tasks/"+low)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the downstream link", `!!document.querySelector('#task-meta a.task-link[href="#/tasks/`+waiting+`"]')`)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.URL()+"/dashboard#/")); err != nil {
		t.Fatal(err)
	}

	if st, body := h.Do("POST", "/api/schedules", h.AdminToken, map[string]any{"name": "nightly-deps", "cron": "0 3 * * *",
		"timezone": "Europe/Paris", "description": "Update dependencies"}); st != 201 {
		t.Fatalf("schedule: %d %v", st, body)
	}
	waitJS(t, ctx, "the schedule", `[...document.querySelectorAll('#schedules-body tr')].some(r => r.textContent.includes('nightly-deps') && r.textContent.includes('Europe/Paris') && r.textContent.includes('active'))`)

	// The page's own controls: resume the lane, pause and run the schedule.
	click(t, ctx, `#lane-pause-buttons button.resume[data-lane="low"]`)
	waitJS(t, ctx, "nothing paused", `document.getElementById('paused-list').textContent === 'nothing'`)
	if _, body := h.Do("GET", "/api/tasks/paused", h.AdminToken, nil); len(body["lanes"].([]any)) != 0 {
		t.Fatalf("still paused: %v", body)
	}
	click(t, ctx, `#schedules-body button.sched-pause[data-schedule="nightly-deps"]`)
	waitJS(t, ctx, "the schedule paused", `[...document.querySelectorAll('#schedules-body tr')].some(r => r.textContent.includes('nightly-deps') && r.textContent.includes('paused'))`)
	click(t, ctx, `#schedules-body button.sched-run[data-schedule="nightly-deps"]`)
	waitJS(t, ctx, "the run-now toast", `[...document.querySelectorAll('#toasts .toast')].some(e => e.textContent.includes('Schedule nightly-deps: run'))`)
	if _, body := h.Do("GET", "/api/schedules/nightly-deps", h.AdminToken, nil); body["paused"] != true {
		t.Fatalf("schedule after the page paused it: %v", body)
	}
	for _, m := range console() {
		if (m.IsException() || m.Type == chromedp.ConsoleError) && !strings.Contains(m.Text, "favicon") {
			t.Errorf("page console: %s", m.String())
		}
	}
}
