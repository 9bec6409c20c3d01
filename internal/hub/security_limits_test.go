package hub_test

import (
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/settings"
)

// The audit's attack: a mailbox retention of MaxInt64 ms overflowed to a
// negative duration and the next eviction emptied every mailbox. Every
// integer setting now has bounds; out of range is refused with the
// structured error and nothing changes.
func TestSettingsOutOfRangeRefused(t *testing.T) {
	h := hubtest.Start(t, "")
	h.Token("a2", auth.RoleAgent)
	tok := h.Token("a1", auth.RoleAgent)
	if status, body := h.Do("POST", "/api/message", tok, map[string]any{"to": "a2", "payload": map[string]any{}}); status != http.StatusOK {
		t.Fatalf("message: %d %v", status, body)
	}
	cases := []struct {
		path, field, value string
		wantErr            string
	}{
		{"/api/config/mailbox-retention", "mailbox_ttl_ms", "9223372036854775807", "out_of_range"},
		{"/api/config/mailbox-retention", "mailbox_ttl_ms", "1e13", "wrong_type"},
		{"/api/config/mailbox-retention", "mailbox_ttl_ms", "31536000001", "out_of_range"},
		{"/api/config/mailbox-retention", "mailbox_ttl_ms", "999", "out_of_range"},
		{"/api/config/mailbox-retention", "mailbox_ttl_ms", "9223372036854775808", "invalid_value"},
		{"/api/config/heartbeat-interval", "heartbeat_interval_ms", "9223372036854775807", "out_of_range"},
		{"/api/config/heartbeat-interval", "heartbeat_interval_ms", "999", "out_of_range"},
		{"/api/config/heartbeat-interval", "heartbeat_interval_ms", "-5", "invalid_value"},
	}
	for _, c := range cases {
		status, body := h.Do("PUT", c.path, h.AdminToken, `{"`+c.field+`":`+c.value+`}`)
		errs, _ := body["errors"].([]any)
		if status != http.StatusBadRequest || len(errs) != 1 || errs[0].(map[string]any)["error"] != c.wantErr {
			t.Errorf("PUT %s %s: %d %v", c.path, c.value, status, body)
		}
	}
	if _, body := h.Do("GET", "/api/config/mailbox-retention", h.AdminToken, nil); body["mailbox_ttl_ms"].(float64) != settings.DefaultMailboxTTLMs {
		t.Fatalf("retention changed by a refused PUT: %v", body)
	}
	if _, body := h.Do("GET", "/api/config/heartbeat-interval", h.AdminToken, nil); body["heartbeat_interval_ms"].(float64) != settings.DefaultHeartbeatIntervalMs {
		t.Fatalf("heartbeat changed by a refused PUT: %v", body)
	}
	// The largest allowed retention is accepted and evicts nothing.
	if status, body := h.Do("PUT", "/api/config/mailbox-retention", h.AdminToken, map[string]any{"mailbox_ttl_ms": int64(365 * 86_400_000)}); status != http.StatusOK {
		t.Fatalf("PUT the maximum: %d %v", status, body)
	}
	if n, err := h.Messaging.Mailbox.Evict(t.Context(), h.Settings.MailboxTTL()); err != nil || n != 0 {
		t.Fatalf("evict at the maximum retention: %d %v", n, err)
	}
	// A value stored out of range (by an older version) reads as its bound.
	if err := h.Settings.Put(settings.KeyMailboxTTL, int64(math.MaxInt64)); err != nil {
		t.Fatal(err)
	}
	if ttl := h.Settings.MailboxTTL(); ttl <= 0 {
		t.Fatalf("stored MaxInt64 retention reads as %v", ttl)
	}
	if n, err := h.Messaging.Mailbox.Evict(t.Context(), h.Settings.MailboxTTL()); err != nil || n != 0 {
		t.Fatalf("evict after a stored MaxInt64 retention: %d %v", n, err)
	}
	// Alert thresholds are bounded too.
	status, body := h.Do("PUT", "/api/config/alerts", h.AdminToken, map[string]any{"rules": map[string]any{
		"stuck_task": map[string]any{"enabled": true, "severity": "warning", "for_seconds": int64(math.MaxInt64 / 1000)}}})
	if status != http.StatusBadRequest {
		t.Fatalf("alert for_seconds MaxInt64/1000: %d %v", status, body)
	}
}

// Task submissions are bounded in size and in how many unfinished tasks
// one submitter holds; refusals are structured and store nothing.
func TestTaskSubmissionLimits(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) {
		c.Queue.MaxMetadataBytes = 1024
		c.Queue.MaxQueuedPerSubmitter = 3
	})
	tok := h.Token("sub", auth.RoleAgent)
	big := map[string]any{"blob": strings.Repeat("x", 2000)}
	status, body := h.Do("POST", "/api/tasks", tok, map[string]any{"description": "big", "metadata": big})
	if status != http.StatusBadRequest || body["errors"].([]any)[0].(map[string]any)["field"] != "metadata" {
		t.Fatalf("oversized metadata: %d %v", status, body)
	}
	// A body over the request limit is refused before it is decoded.
	huge := map[string]any{"description": "huge", "metadata": map[string]any{"blob": strings.Repeat("x", 3<<19)}}
	if status, body = h.Do("POST", "/api/tasks", tok, huge); status != http.StatusRequestEntityTooLarge || body["error"] != "payload_too_large" {
		t.Fatalf("1.5 MiB body: %d %v", status, body)
	}
	caps := make([]string, 33)
	for i := range caps {
		caps[i] = "c"
	}
	if status, body = h.Do("POST", "/api/tasks", tok, map[string]any{"description": "caps", "needed_capabilities": caps}); status != http.StatusBadRequest {
		t.Fatalf("33 capabilities: %d %v", status, body)
	}
	if status, body = h.Do("POST", "/api/tasks", tok, map[string]any{"description": strings.Repeat("d", 10001)}); status != http.StatusBadRequest {
		t.Fatalf("description of 10001 characters: %d %v", status, body)
	}
	var ids []string
	for i := range 3 {
		status, body = h.Do("POST", "/api/tasks", tok, map[string]any{"description": "t", "metadata": map[string]any{"i": i}})
		if status != http.StatusCreated {
			t.Fatalf("submission %d: %d %v", i, status, body)
		}
		ids = append(ids, body["task_id"].(string))
	}
	status, body = h.Do("POST", "/api/tasks", tok, map[string]any{"description": "one too many"})
	if status != http.StatusTooManyRequests || body["error"] != "queue_quota_exceeded" {
		t.Fatalf("fourth unfinished task: %d %v", status, body)
	}
	// Another submitter has its own quota.
	if status, body = h.Do("POST", "/api/tasks", h.Token("other", auth.RoleAgent), map[string]any{"description": "x"}); status != http.StatusCreated {
		t.Fatalf("other submitter: %d %v", status, body)
	}
	// A finished task gives its slot back.
	if status, body = h.Do("POST", "/api/tasks/"+ids[0]+"/cancel", tok, nil); status != http.StatusOK {
		t.Fatalf("cancel: %d %v", status, body)
	}
	if status, body = h.Do("POST", "/api/tasks", tok, map[string]any{"description": "after cancel"}); status != http.StatusCreated {
		t.Fatalf("submission after a cancel: %d %v", status, body)
	}
	// The count survives a restart.
	h.Restart()
	if status, body = h.Do("POST", "/api/tasks", tok, map[string]any{"description": "after restart"}); status != http.StatusTooManyRequests {
		t.Fatalf("quota after restart: %d %v", status, body)
	}
}
