package dashboard_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/tasks"
)

// TestBrowserArchiveList: the tasks page's Table filter lists the archive
// (ended tasks past the retention), titled so, paged by the hub, with the
// status filter and the keyboard as on the live list; switching back
// lists the live table.
func TestBrowserArchiveList(t *testing.T) {
	ctx, console := browser(t)
	var ms atomic.Int64
	ms.Store(time.Now().UnixMilli())
	now := func() time.Time { return time.UnixMilli(ms.Load()) }
	h, _ := startHub(t, func(c *hub.Config) {
		c.TaskArchive = tasks.ArchiveConfig{Retention: time.Hour, Interval: time.Hour, Now: now}
		c.Queue.Now = now
	})
	a := h.Agent("worker-1")
	for i := range 27 {
		submit(t, h, map[string]any{"description": fmt.Sprintf("Nightly report %02d", i)})
		runTask(t, a, true)
	}
	a.Close()
	live := submit(t, h, map[string]any{"description": "Still queued", "target_agent": "nobody"})
	ms.Add((2 * time.Hour).Milliseconds())
	if res, err := h.Archiver.RunOnce(context.Background()); err != nil || res.Moved != 27 {
		t.Fatalf("archive pass: %+v %v", res, err)
	}

	navigate(t, ctx, h.URL()+"/dashboard#/tasks")
	waitJS(t, ctx, "the live list", `document.getElementById('tasks-title').textContent === 'All tasks' &&
		document.querySelectorAll('#tasks-body tr').length === 1 && !!document.querySelector('#tasks-body tr[data-task="`+live+`"]')`)
	evalJS(t, ctx, `(() => { const s = document.querySelector('#task-filters select[name=archived]'); s.value = 'true'; s.dispatchEvent(new Event('change', {bubbles: true})); })()`)
	waitJS(t, ctx, "the archive", `location.hash.includes('archived=true') && document.getElementById('tasks-title').textContent === 'Archived tasks' &&
		document.getElementById('tasks-total').textContent === '27' && document.querySelectorAll('#tasks-body tr').length === 27`)
	navigate(t, ctx, h.URL()+"/dashboard#/tasks?archived=true&limit=25")
	waitJS(t, ctx, "the archive's first page", `document.getElementById('page-info').textContent === '1–25 of 27' && document.querySelectorAll('#tasks-body tr').length === 25`)
	click(t, ctx, "#page-next")
	waitJS(t, ctx, "its second page", `document.getElementById('page-info').textContent === '26–27 of 27' && location.hash.includes('offset=25') &&
		location.hash.includes('archived=true')`)
	// The keyboard moves through the archive's rows and opens one.
	evalJS(t, ctx, `document.activeElement && document.activeElement.blur()`)
	evalJS(t, ctx, `document.dispatchEvent(new KeyboardEvent('keydown', {key: 'j', bubbles: true}))`)
	evalJS(t, ctx, `document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))`)
	waitJS(t, ctx, "an archived task opened", `location.hash.startsWith('#/tasks/task-') && !document.getElementById('view-task').hidden &&
		document.getElementById('task-meta').textContent.includes('ended longer ago than the task retention')`)
	// A status filter of the archive.
	navigate(t, ctx, h.URL()+"/dashboard#/tasks?archived=true&status=cancelled")
	waitJS(t, ctx, "no cancelled task archived", `document.getElementById('tasks-total').textContent === '0'`)
	for _, m := range console() {
		if m.Type == "error" {
			t.Errorf("console: %v", m.Args)
		}
	}
}
