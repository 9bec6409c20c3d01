package sidecar

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfigDefaultsAndOverrides(t *testing.T) {
	env := map[string]string{
		"AGENTCOM_SIDECAR_TOKEN":                "from-env",
		"AGENTCOM_SIDECAR_CAPABILITIES":         "code, review ,",
		"AGENTCOM_SIDECAR_WAKE_RETRY_DELAYS_MS": "1,2",
		"AGENTCOM_SIDECAR_WAKE_TIMEOUT_MS":      "1500",
	}
	c, err := ParseConfig([]byte(`{"agent_id":"a","token":"t","hub_url":"http://hub:4000","wake_command":"echo hi","typo_field":1,
		"confirmation_timeout_ms":0,"results_dir":"./r","repo_dir":"repo"}`), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Token != "from-env" || c.HubURL != "ws://hub:4000/ws" || c.HubAPIURL != "http://hub:4000" {
		t.Fatalf("hub/token = %q %q %q", c.Token, c.HubURL, c.HubAPIURL)
	}
	if strings.Join(c.Capabilities, "|") != "code|review" || len(c.WakeRetryDelays) != 2 || c.WakeRetryDelays[1] != 2*time.Millisecond {
		t.Fatalf("lists = %v %v", c.Capabilities, c.WakeRetryDelays)
	}
	if c.WakeTimeout != 1500*time.Millisecond || c.ConfirmationTimeout != 30*time.Second || c.PingInterval != 30*time.Second || c.ReconnectMax != time.Minute {
		t.Fatalf("durations = %v %v %v %v", c.WakeTimeout, c.ConfirmationTimeout, c.PingInterval, c.ReconnectMax)
	}
	if !c.WakeShell || c.WakeCommand[0] != "echo hi" {
		t.Fatalf("wake = %v %v", c.WakeCommand, c.WakeShell)
	}
	if len(c.Unknown) != 1 || c.Unknown[0] != "typo_field" {
		t.Fatalf("unknown = %v", c.Unknown)
	}
	c2, err := ParseConfig([]byte(`{"agent_id":"a","token":"t","hub_url":"wss://h/custom","wake_command":["notify","--now"]}`), nil)
	if err != nil || c2.WakeShell || len(c2.WakeCommand) != 2 || c2.HubURL != "wss://h/custom" || c2.HubAPIURL != "https://h" {
		t.Fatalf("argv config = %+v, %v", c2, err)
	}
}

func TestLoadConfigResolvesPathsAgainstTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(`{"agent_id":"a","token":"t","hub_url":"ws://h:1/ws","repo_dir":"work","log_file":"/abs/log"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ResultsDir != filepath.Join(dir, "results") || c.StateFile != filepath.Join(dir, "queue.json") ||
		c.RepoDir != filepath.Join(dir, "work") || c.LogFile != "/abs/log" || c.Path != p {
		t.Fatalf("paths = %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, js := range map[string]string{
		"missing agent":   `{"token":"t","hub_url":"ws://h/ws"}`,
		"missing token":   `{"agent_id":"a","hub_url":"ws://h/ws"}`,
		"bad scheme":      `{"agent_id":"a","token":"t","hub_url":"ftp://h"}`,
		"not object":      `[1]`,
		"bad type":        `{"agent_id":5,"token":"t","hub_url":"ws://h"}`,
		"float ms":        `{"agent_id":"a","token":"t","hub_url":"ws://h","ping_interval_ms":1.5}`,
		"bad level":       `{"agent_id":"a","token":"t","hub_url":"ws://h","log_level":"loud"}`,
		"bad wake":        `{"agent_id":"a","token":"t","hub_url":"ws://h","wake_command":{"x":1}}`,
		"empty argv prog": `{"agent_id":"a","token":"t","hub_url":"ws://h","wake_command":[""]}`,
		"reconnect order": `{"agent_id":"a","token":"t","hub_url":"ws://h","reconnect_min_ms":5000,"reconnect_max_ms":10}`,
	} {
		if _, err := ParseConfig([]byte(js), nil); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := ParseConfig([]byte(`{"agent_id":"a","token":"t","hub_url":"ws://h"}`), func(k string) string {
		if k == "AGENTCOM_SIDECAR_PING_INTERVAL_MS" {
			return "soon"
		}
		return ""
	}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "AGENTCOM_SIDECAR_PING_INTERVAL_MS") {
		t.Errorf("bad env: %v", err)
	}
	if h := ConfigHelp(); !strings.Contains(h, "AGENTCOM_SIDECAR_WAKE_COMMAND") || !strings.Contains(h, "confirmation_timeout_ms") {
		t.Errorf("help lacks fields:\n%s", h)
	}
}

func TestStateRoundTripAndLegacy(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "queue.json")
	st := State{Active: &Task{TaskID: "task-1", Metadata: json.RawMessage(`{"a":1}`), Status: StatusWorking, Generation: 3, Confirmed: true},
		Outbox: []Report{{Type: reportFailed, TaskID: "task-0", Generation: 1, Reason: "x"}}}
	if err := SaveState(p, st); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	got, info, err := LoadState(p, time.Now())
	if err != nil || info.CorruptMovedTo != "" || got.Active.Generation != 3 || !got.Active.Confirmed || len(got.Outbox) != 1 {
		t.Fatalf("load = %+v %+v %v", got, info, err)
	}
	// No temp files left behind.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("dir has %d entries", len(ents))
	}
	// The Node sidecar's format.
	legacy := `{"active": null, "recovering": {"task_id": "task-9", "description": "d", "metadata": {}, "status": "failed", "assigned_at": 1, "generation": 2, "wake_attempts": 1}}`
	got, notes, err := DecodeState([]byte(legacy))
	if err != nil || got.Active == nil || got.Active.TaskID != "task-9" || got.Active.Status != StatusWorking || len(notes) != 2 {
		t.Fatalf("legacy = %+v %v %v", got.Active, notes, err)
	}
	// Missing file: empty state.
	got, _, err = LoadState(filepath.Join(dir, "none.json"), time.Now())
	if err != nil || got.Active != nil {
		t.Fatalf("missing = %+v %v", got, err)
	}
}

func TestCorruptStateIsNeverSilentlyEmptied(t *testing.T) {
	for name, content := range map[string]string{
		"truncated": `{"active": {"task_id":`,
		"empty":     ``,
		"bad id":    `{"active": {"task_id": "../x", "status": "working"}}`,
		"bad gen":   `{"active": {"task_id": "t", "generation": 1.5}}`,
		"outbox":    `{"outbox": [{"type": "task_complete", "task_id": "t"}]}`,
		"future":    `{"version": 99}`,
		"trailing":  `{} {}`,
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "queue.json")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		now := time.UnixMilli(1234)
		st, info, err := LoadState(p, now)
		if err != nil || st.Active != nil || info.CorruptMovedTo != p+".corrupt-1234" || info.CorruptReason == "" {
			t.Errorf("%s: %+v %+v %v", name, st, info, err)
			continue
		}
		if b, err := os.ReadFile(info.CorruptMovedTo); err != nil || string(b) != content {
			t.Errorf("%s: content not preserved: %q %v", name, b, err)
		}
	}
}

func TestParseResult(t *testing.T) {
	long := strings.Repeat("é", 1500)
	cases := []struct {
		in      string
		success bool
		reason  string
	}{
		{`{"status":"success","output":"x"}`, true, ""},
		{` {"status": "success"} `, true, ""},
		{`{"status":"failed","reason":"r","error":"e"}`, false, "r"},
		{`{"status":"failed","error":"e"}`, false, "e"},
		{`{"status":"failed","reason":""}`, false, "unknown"},
		{`{"status":"failed","reason":{"code":1}}`, false, `{"code":1}`},
		{`{"status":"weird"}`, false, "unknown"},
		{`{"reason":"` + long + `"}`, false, cut(long)},
		{`not json`, false, "result_parse_error: invalid character 'o' in literal null (expecting 'u')"},
		{`[1]`, false, "result_parse_error: json: cannot unmarshal array into Go value of type map[string]json.RawMessage"},
		{`null`, false, "result_parse_error: result is not a JSON object"},
		{`{"status":"success"} x`, false, "result_parse_error: trailing data after the JSON object"},
	}
	for _, c := range cases {
		out := ParseResult([]byte(c.in))
		if out.Success != c.success || (!c.success && out.Reason != c.reason) {
			t.Errorf("ParseResult(%.40q) = %+v, want success=%v reason=%.60q", c.in, out, c.success, c.reason)
		}
	}
	if r := ParseResult([]byte(`{"reason":"` + long + `"}`)).Reason; len(r) > maxReason {
		t.Errorf("reason not cut: %d bytes", len(r))
	}
	if out := ParseResult([]byte("{\n  \"status\": \"success\",\n  \"n\": 1\n}")); string(out.Result) != `{"status":"success","n":1}` {
		t.Errorf("result not compacted: %s", out.Result)
	}
}

func TestDecodeFrame(t *testing.T) {
	f, err := decodeFrame([]byte(`{"type":"task_assign","task_id":"task-1","description":{"x":1},"metadata":{"m":2},"generation":7,"assigned_at":99}`))
	if err != nil || f.Generation != 7 || f.AssignedAt != 99 || f.Description != `{"x":1}` || string(f.Metadata) != `{"m":2}` {
		t.Fatalf("frame = %+v, %v", f, err)
	}
	f, err = decodeFrame([]byte(`{"type":"task_continue","task_id":"t"}`))
	if err != nil || f.Generation != -1 {
		t.Fatalf("no generation = %+v, %v", f, err)
	}
	f, err = decodeFrame([]byte(`{"type":"error","error":{"field":"x"}}`))
	if err != nil || f.Error != `{"field":"x"}` {
		t.Fatalf("structured error = %+v, %v", f, err)
	}
	f, err = decodeFrame([]byte(`{"type":"task_assign","task_id":"t","dependencies":[{"task_id":"a","result":{"ok":true}}]}`))
	if err != nil || !jsonEq(f.Dependencies, `[{"task_id":"a","result":{"ok":true}}]`) {
		t.Fatalf("dependencies = %+v, %v", f, err)
	}
	for _, bad := range []string{`{"type":"task_assign","dependencies":{"a":1}}`, `{"type":"task_assign","dependencies":"a"}`,
		`[]`, `{}`, `{"type":1}`, `{"type":"x","generation":1.0}`, `{"type":"x","generation":"1"}`,
		`{"type":"x","task_id":"../../etc"}`, `{"type":"x","task_id":5}`, `nope`, `null`} {
		if _, err := decodeFrame([]byte(bad)); !errors.Is(err, errFrame) {
			t.Errorf("decodeFrame(%s) err = %v", bad, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoff(100*time.Millisecond, time.Second, rand.New(rand.NewPCG(1, 2)))
	nominal := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, n := range nominal {
		n *= time.Millisecond
		if d := b.next(); d < n/2 || d > n {
			t.Fatalf("step %d: %s not in [%s, %s]", i, d, n/2, n)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Fatalf("after reset: %s", d)
	}
}

// TestJitterBounds: every delay a sidecar draws stays in its bounds
// (Retry-After: not sooner, at most half as long again, at most the
// backoff's maximum, which then spreads below it; moving to the next hub: at most 250 ms and the first
// backoff delay), and the draws spread over those bounds.
func TestJitterBounds(t *testing.T) {
	b := newBackoff(time.Second, 60*time.Second, rand.New(rand.NewPCG(3, 4)))
	cases := []struct {
		name   string
		draw   func() time.Duration
		lo, hi time.Duration
	}{
		{"retry after 2 s", func() time.Duration { return b.retryAfter(2 * time.Second) }, 2 * time.Second, 3 * time.Second},
		{"retry after 0", func() time.Duration { return b.retryAfter(0) }, minRetryAfter, minRetryAfter * 3 / 2},
		{"retry after 50 s", func() time.Duration { return b.retryAfter(50 * time.Second) }, 40 * time.Second, 60 * time.Second},
		{"retry after 10 min", func() time.Duration { return b.retryAfter(10 * time.Minute) }, 40 * time.Second, 60 * time.Second},
		{"failover", b.failover, 0, maxFailoverJitter},
	}
	for _, c := range cases {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := c.draw()
			if d < c.lo || d > c.hi {
				t.Fatalf("%s: %s not in [%s, %s]", c.name, d, c.lo, c.hi)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Errorf("%s: only %d distinct delays in 200 draws", c.name, len(seen))
		}
	}
	small := newBackoff(10*time.Millisecond, time.Second, rand.New(rand.NewPCG(5, 6)))
	for range 200 {
		if d := small.failover(); d > 10*time.Millisecond {
			t.Fatalf("failover %s with reconnect_min 10ms", d)
		}
	}
}

func TestRotatingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	r, err := OpenRotatingFile(p, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"12345", "6789", "abcdef", "g"} {
		if _, err := r.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(p)
	old, _ := os.ReadFile(p + ".1")
	if string(cur) != "abcdefg" || string(old) != "123456789" {
		t.Fatalf("cur %q old %q", cur, old)
	}
	if _, err := r.Write([]byte("x")); err == nil {
		t.Fatal("write after close")
	}
}

func TestValidTaskID(t *testing.T) {
	for id, ok := range map[string]bool{"task-0123456789abcdef": true, "a.b_c-d": true, "..": false, ".": false, ".hidden": false,
		"a/b": false, "": false, strings.Repeat("a", 129): false, "a b": false} {
		if ValidTaskID(id) != ok {
			t.Errorf("ValidTaskID(%q) != %v", id, ok)
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"version":2,"active":{"task_id":"task-1","metadata":{},"status":"working","generation":1},"outbox":[]}`))
	f.Add([]byte(`{"active":null,"recovering":{"task_id":"t","status":"waking"}}`))
	f.Add([]byte(`{"outbox":[{"type":"task_complete","task_id":"t","result":{"status":"success"}}]}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"active":{"task_id":"../x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, _, err := DecodeState(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("error not ErrCorruptState: %v", err)
			}
			return
		}
		// Whatever decodes must be safe to use and survive a round trip.
		if st.Active != nil && !ValidTaskID(st.Active.TaskID) {
			t.Fatalf("unsafe task id accepted: %q", st.Active.TaskID)
		}
		for _, r := range st.Outbox {
			if !ValidTaskID(r.TaskID) {
				t.Fatalf("unsafe outbox id: %q", r.TaskID)
			}
		}
		b, err := EncodeState(st)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if _, _, err := DecodeState(b); err != nil {
			t.Fatalf("round trip: %v\n%s", err, b)
		}
	})
}

func FuzzParseResult(f *testing.F) {
	for _, s := range []string{`{"status":"success","output":"x"}`, `{"status":"failed","reason":"r"}`, `{"error":[1,2]}`, `x`, `null`, `{"status":"success"}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out := ParseResult(data)
		if out.Success {
			if !json.Valid(out.Result) {
				t.Fatalf("invalid result JSON %q", out.Result)
			}
			return
		}
		if out.Reason == "" || len(out.Reason) > maxReason+len("result_parse_error: ") {
			t.Fatalf("bad reason %q", out.Reason)
		}
	})
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{`{"type":"task_assign","task_id":"task-1","generation":1}`, `{"type":"identified","agent_id":"a"}`,
		`{"type":"error","error":"invalid_token"}`, `{"type":"task_continue","task_id":"t","generation":1e3}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			return
		}
		if fr.Type == "" || (fr.TaskID != "" && !ValidTaskID(fr.TaskID)) {
			t.Fatalf("accepted frame %+v", fr)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"agent_id":"a","token":"t","hub_url":"ws://h:1/ws","wake_command":"x","wake_retry_delays_ms":[1]}`))
	f.Add([]byte(`{"agent_id":"a","token":"t","hub_url":"http://h"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, nil)
		if err != nil {
			return
		}
		if c.AgentID == "" || c.Token == "" || c.PollInterval <= 0 || c.ReconnectMin <= 0 {
			t.Fatalf("accepted config %+v", c)
		}
		for _, d := range append([]time.Duration{c.WakeTimeout, c.ConfirmationTimeout, c.PingInterval, c.PongTimeout,
			c.ReconnectMin, c.ReconnectMax, c.AuthRetry, c.ProgressInterval, c.PollInterval, c.ResultSettle, c.ShutdownTimeout},
			c.WakeRetryDelays...) {
			if d < 0 || d > MaxDurationMs*time.Millisecond {
				t.Fatalf("accepted duration %v out of bounds: %+v", d, c)
			}
		}
	})
}

// Durations are bounded: a value that would overflow, or a list too long,
// is refused by name.
func TestConfigDurationBounds(t *testing.T) {
	base := `{"agent_id":"a","token":"t","hub_url":"ws://h/ws",`
	for _, extra := range []string{
		`"wake_timeout_ms":9223372036854775807}`,
		`"reconnect_max_ms":2592000001}`,
		`"wake_retry_delays_ms":[9223372036854775807]}`,
		`"wake_retry_delays_ms":[` + strings.Repeat("1,", 20) + `1]}`,
		`"ping_interval_ms":-1}`,
	} {
		if c, err := ParseConfig([]byte(base+extra), nil); err == nil {
			t.Errorf("%s accepted: %+v", extra, c)
		}
	}
	env := map[string]string{"AGENTCOM_SIDECAR_PONG_TIMEOUT_MS": "9223372036854775807"}
	if _, err := ParseConfig([]byte(base+`"wake_command":"x"}`), func(k string) string { return env[k] }); err == nil {
		t.Error("an overflowing env duration was accepted")
	}
	if c, err := ParseConfig([]byte(base+`"auth_retry_ms":2592000000}`), nil); err != nil || c.AuthRetry != 30*24*time.Hour {
		t.Errorf("the maximum: %v %v", c.AuthRetry, err)
	}
}

func TestWakeEnvKeepsHugeTasksInTheFileOnly(t *testing.T) {
	cfg := Config{AgentID: "a", Token: "secret-token", HubURL: "ws://h/ws", HubAPIURL: "http://h", ResultsDir: "/r", StateFile: "/s/q.json"}
	s := &Sidecar{cfg: cfg}
	big := strings.Repeat("x", maxEnvValue+1)
	env := strings.Join(s.wakeEnv(Task{TaskID: "t1", Description: big, Metadata: json.RawMessage(`{}`)}, "/s/tasks/t1.json"), "\n")
	if !strings.Contains(env, "TASK_DESCRIPTION_TRUNCATED=1") || strings.Contains(env, "TASK_JSON=") || strings.Contains(env, big) {
		t.Fatal("a huge description went into the environment")
	}
	env = strings.Join(s.wakeEnv(Task{TaskID: "t1", Description: "small", Metadata: json.RawMessage(`{}`)}, "/s/tasks/t1.json"), "\n")
	for _, want := range []string{"TASK_ID=t1", "TASK_FILE=/s/tasks/t1.json", "TASK_DESCRIPTION=small", "RESULT_FILE=/r/t1.json", "STARTED_FILE=/r/t1.started", "HUB_URL=http://h", "HUB_WS_URL=ws://h/ws", "AGENT_ID=a"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s", want)
		}
	}
	if strings.Contains(env, "secret-token") {
		t.Fatal("the token reached the wake command")
	}
}

func TestTaskFileCarriesDependencies(t *testing.T) {
	dir := t.TempDir()
	s := &Sidecar{cfg: Config{StateFile: filepath.Join(dir, "state.json"), ResultsDir: filepath.Join(dir, "results")}}
	p, err := s.writeTaskFile(Task{TaskID: "t1", Metadata: json.RawMessage(`{}`),
		Dependencies: json.RawMessage(`[{"task_id":"a","status":"completed","result":{"n":1}}]`)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	var tf TaskFile
	if err := json.Unmarshal(b, &tf); err != nil || !jsonEq(tf.Dependencies, `[{"task_id":"a","status":"completed","result":{"n":1}}]`) {
		t.Fatalf("task file = %s (%v)", b, err)
	}
}

// A hub's Retry-After is honoured up to maxRetryAfter, whatever number it
// sends: one too large for a Duration must not wrap to a retry at once.
func TestBusyOfBoundsRetryAfter(t *testing.T) {
	for _, c := range []struct {
		header string
		want   time.Duration
	}{
		{"2", 2 * time.Second},
		{"0", 0},
		{"600", maxRetryAfter},
		{"9223372036854775807", maxRetryAfter},
		{"99999999999", maxRetryAfter},
	} {
		resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {c.header}}}
		b := busyOf(resp)
		if b == nil || b.RetryAfter != c.want {
			t.Errorf("Retry-After %s: %+v, want %v", c.header, b, c.want)
		}
	}
	for _, h := range []string{"-1", "soon", "1.5"} {
		if b := busyOf(&http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {h}}}); b != nil {
			t.Errorf("Retry-After %q taken as %+v", h, b)
		}
	}
}
