package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
)

const secretText = "SECRET/var/lib/agentcom/backups: permission denied"

// secretStorage fails every storage action with a text naming a path.
type secretStorage struct{ fakeStorage }

func (*secretStorage) Backup(context.Context) (any, error) { return nil, errors.New(secretText) }
func (*secretStorage) Restore(context.Context, string, string, bool) (any, error) {
	return nil, errors.New(secretText)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoInternalErrorText: a storage action that fails with a text
// naming a path answers a stable code and an error_id; the frame never
// carries the text and the hub log has the id with the cause.
func TestNoInternalErrorText(t *testing.T) {
	var logs lockedBuffer
	h, _ := startHub(t, hubtest.WithJSONLog(&logs), func(c *hub.Config) { c.Storage = &secretStorage{} })
	c := hubtest.Dial(t, dashURL(h))
	defer c.Close()
	for _, fr := range []map[string]any{
		{"type": "backup_now", "ref": "b"},
		{"type": "restore", "table": "task_queue", "dry_run": false, "ref": "r"},
	} {
		c.Send(fr)
		want := map[string]string{"backup_now": "backup_result", "restore": "restore_result"}[fr["type"].(string)]
		r := c.Expect(want)
		raw, _ := json.Marshal(r)
		if strings.Contains(string(raw), "SECRET") || strings.Contains(string(raw), "permission denied") {
			t.Fatalf("%s leaks the error: %s", want, raw)
		}
		id, _ := r["error_id"].(string)
		if r["status"] != "error" || r["error"] != "storage_action_failed" || len(id) != 16 || r["ref"] != fr["ref"] {
			t.Fatalf("%s: %s", want, raw)
		}
		found := false
		for line := range strings.SplitSeq(logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["error_id"] == id {
				s, _ := rec["err"].(string)
				found = strings.Contains(s, "SECRET")
			}
		}
		if !found {
			t.Fatalf("%s: no log line has error_id %s with the cause", want, id)
		}
	}
}
