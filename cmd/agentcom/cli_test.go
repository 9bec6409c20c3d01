package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// syncBuf is a buffer written by a command running in another goroutine
// and read by the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bg runs a command in the background with a cancellable context; wait
// returns its exit code once it ended (bounded).
type bg struct {
	out, err syncBuf
	done     chan int
	cancel   context.CancelFunc
}

func runBG(t *testing.T, env map[string]string, args ...string) *bg {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bg{done: make(chan int, 1), cancel: cancel}
	e := &cmdEnv{stdout: &b.out, stderr: &b.err, getenv: func(k string) string { return env[k] }}
	go func() { b.done <- dispatch(ctx, e, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%v still running", args)
		}
	})
	return b
}

func (b *bg) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case code := <-b.done:
		b.done <- code // for the cleanup
		return code
	case <-time.After(d):
		t.Fatalf("command still running after %v\nstdout:\n%s\nstderr:\n%s", d, b.out.String(), b.err.String())
		return -1
	}
}

// leaves returns every command of the tree with its path.
func walk(c *command, path []string, fn func(path []string, c *command)) {
	if len(path) > 0 {
		fn(path, c)
	}
	for _, s := range c.subs {
		walk(s, append(append([]string(nil), path...), s.name), fn)
	}
}

func mustJSON(t *testing.T, what, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s: stdout is not JSON of %T: %v\n%s", what, v, err, out)
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func TestEveryCommandHelpAndUsage(t *testing.T) {
	n := 0
	walk(commands(), nil, func(path []string, c *command) {
		if c.hidden {
			return
		}
		n++
		name := strings.Join(path, " ")
		code, out, errs := runCmd(t, nil, append(path, "--help")...)
		if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: agentcom "+name) || !strings.Contains(out, c.summary) {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", name, code, out, errs)
		}
		// help CMD prints the same, on stdout.
		hcode, hout, herrs := runCmd(t, nil, append([]string{"help"}, path...)...)
		if hcode != 0 || herrs != "" || hout != out {
			t.Errorf("help %s: exit %d, stderr %q, stdout differs from --help:\n%s\nvs\n%s", name, hcode, herrs, hout, out)
		}
		if c.setup != nil {
			if !c.noJSON && !strings.Contains(out, "--json") {
				t.Errorf("%s has no --json", name)
			}
			code, out, errs = runCmd(t, nil, append(path, "--no-such-flag")...)
			if code != 2 || out != "" || !strings.Contains(errs, "-no-such-flag") || !strings.Contains(errs, "agentcom "+name+" --help") {
				t.Errorf("%s --no-such-flag: exit %d, stdout %q, stderr %q", name, code, out, errs)
			}
			return
		}
		code, out, errs = runCmd(t, nil, append(path, "frobnicate")...)
		if code != 2 || out != "" || !strings.Contains(errs, `unknown command "frobnicate"`) {
			t.Errorf("%s frobnicate: exit %d, stdout %q, stderr %q", name, code, out, errs)
		}
	})
	if n < 35 {
		t.Fatalf("only %d commands walked", n)
	}
	// The top level.
	code, out, errs := runCmd(t, nil, "--help")
	if code != 0 || errs != "" || !strings.Contains(out, "usage: agentcom <command>") || strings.Contains(out, "__complete") {
		t.Fatalf("--help: %d %q %q", code, out, errs)
	}
	if code, out, errs := runCmd(t, nil, "help"); code != 0 || errs != "" || !strings.Contains(out, "commands:") {
		t.Fatalf("help: %d %q %q", code, out, errs)
	}
	// No command at all: the usage on stderr, exit 2.
	if code, out, errs := runCmd(t, nil); code != 2 || out != "" || !strings.Contains(errs, "commands:") {
		t.Fatalf("no args: %d %q %q", code, out, errs)
	}
	// help of a leaf given through its group.
	if code, out, _ := runCmd(t, nil, "task", "help", "submit"); code != 0 || !strings.HasPrefix(out, "usage: agentcom task submit") {
		t.Fatalf("task help submit: %d %q", code, out)
	}
	// Positional arguments are counted.
	if code, _, errs := runCmd(t, nil, "task", "show"); code != 2 || !strings.Contains(errs, "missing argument: TASK_ID") {
		t.Fatalf("task show without id: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, nil, "task", "stats", "extra"); code != 2 || !strings.Contains(errs, `unexpected argument "extra"`) {
		t.Fatalf("task stats extra: %d %q", code, errs)
	}
}

func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tsak"}, "did you mean task?"},
		{[]string{"taks", "list"}, "did you mean task?"},
		{[]string{"task", "lst"}, "did you mean list?"},
		{[]string{"task", "sub"}, "did you mean submit?"},
		{[]string{"chanel", "list"}, "did you mean channel?"},
		{[]string{"mesage"}, "did you mean message?"},
		{[]string{"help", "tsak"}, "did you mean task?"},
	} {
		code, out, errs := runCmd(t, nil, tc.args...)
		if code != 2 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errs, tc.want)
		}
	}
	if code, _, errs := runCmd(t, nil, "task", "list", "--stauts", "queued"); code != 2 || !strings.Contains(errs, "Did you mean --status?") {
		t.Errorf("--stauts: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, nil, "zzzzzz"); code != 2 || strings.Contains(errs, "did you mean") {
		t.Errorf("no suggestion expected: %d %q", code, errs)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if code, out, _ := runCmd(t, nil, args...); code != 0 || out != "agentcom "+version+"\n" {
			t.Errorf("%v: %d %q", args, code, out)
		}
	}
	code, out, _ := runCmd(t, nil, "version", "--json")
	var v struct {
		Version string `json:"version"`
	}
	mustJSON(t, "version --json", out, &v)
	if code != 0 || v.Version != version {
		t.Fatalf("version --json: %d %q", code, out)
	}
}

// No command prints a token or secret it was not asked to create: not as
// a flag default in --help, not in a usage error, not in an error.
func TestNoCommandPrintsASecret(t *testing.T) {
	h := hubtest.Start(t, "")
	const joinSecret = "join-secret-marker-5f1e"
	env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken, "AGENTCOM_JOIN_SECRET": joinSecret,
		"AGENTCOM_SIDECAR_TOKEN": "sidecar-token-marker-77a0", "AGENTCOM_DATA_DIR": t.TempDir()}
	secrets := []string{h.AdminToken, joinSecret, "sidecar-token-marker-77a0"}
	check := func(args []string, code int, out, errs string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) || strings.Contains(errs, s) {
				t.Errorf("%v (exit %d) printed a secret:\nstdout:\n%s\nstderr:\n%s", args, code, out, errs)
			}
		}
	}
	var runs [][]string
	walk(commands(), nil, func(path []string, c *command) {
		runs = append(runs, append(path, "--help"), append(path, "-h"), append([]string{"help"}, path...),
			append(path, "--no-such-flag"), append(path, "--token"))
		if c.setup == nil {
			runs = append(runs, path, append(path, "frobnicate"))
		} else if c.args[0] > 0 {
			runs = append(runs, path) // missing its argument
		}
	})
	runs = append(runs,
		[]string{"task", "submit", "x", "--priority", "bogus"},
		[]string{"task", "submit", ""},
		[]string{"task", "submit", "x", "--max-retries", "many"},
		[]string{"task", "list", "--status", "bogus"},
		[]string{"task", "list", "--limit", "-1"},
		[]string{"onboard"},
		[]string{"onboard", "--hub"},
		[]string{"offboard"},
		[]string{"token", "create"},
		[]string{"store", "restore"},
		[]string{"bench", "--hub-process", "sideways"},
		[]string{"serve", "--rate-limits", "bogus"},
		[]string{"serve", "--log-level", "loud"},
		[]string{"message", "send"},
		[]string{"message", "send", "bob"},
		[]string{"message", "inbox"},
		[]string{"channel", "publish", "c", "x", "--payload", "[1]"},
		[]string{"completion", "tcsh"},
		[]string{"task", "show", "no-such-task"},
		[]string{"task", "list", "--hub", "http://127.0.0.1:1"},
		[]string{"sidecar", "--config", filepath.Join(t.TempDir(), "missing.json")},
	)
	for _, args := range runs {
		code, out, errs := runCmd(t, env, args...)
		check(args, code, out, errs)
	}
	if len(runs) < 150 {
		t.Fatalf("only %d command lines tried", len(runs))
	}
}

// TestOutputColour: colour on a terminal only, never with NO_COLOR or
// when stdout is not a terminal; --json never has colour.
func TestOutputColour(t *testing.T) {
	h := hubtest.Start(t, "")
	if st, _ := h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "colourful", "priority": "urgent"}); st != 201 {
		t.Fatal(st)
	}
	run := func(tty bool, extra map[string]string, args ...string) string {
		var out, errb bytes.Buffer
		env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}
		for k, v := range extra {
			env[k] = v
		}
		e := &cmdEnv{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }, stdoutTTY: tty}
		if code := dispatch(context.Background(), e, args); code != 0 {
			t.Fatalf("%v: %d %s", args, code, errb.String())
		}
		return out.String()
	}
	tty := run(true, nil, "task", "list")
	if !ansi.MatchString(tty) {
		t.Fatalf("no colour on a terminal:\n%q", tty)
	}
	// Alignment ignores the colour codes: without them the lines are the
	// piped output exactly.
	piped := run(false, nil, "task", "list")
	if ansi.MatchString(piped) || ansi.ReplaceAllString(tty, "") != piped {
		t.Fatalf("piped output differs from the terminal's without colour:\n%q\n%q", piped, tty)
	}
	if out := run(true, map[string]string{"NO_COLOR": "1"}, "task", "list"); ansi.MatchString(out) {
		t.Fatalf("colour despite NO_COLOR:\n%q", out)
	}
	if out := run(true, map[string]string{"TERM": "dumb"}, "task", "list"); ansi.MatchString(out) {
		t.Fatalf("colour on a dumb terminal:\n%q", out)
	}
	if out := run(true, nil, "task", "list", "--json"); ansi.MatchString(out) {
		t.Fatalf("colour in JSON:\n%q", out)
	}
}

func TestErrorHints(t *testing.T) {
	h := hubtest.Start(t, "")
	// 401: the hint names --token and AGENTCOM_TOKEN.
	code, out, errs := runCmd(t, map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": "not-a-token"}, "task", "list")
	if code != 1 || out != "" || !strings.Contains(errs, "unauthorized (401)") || !strings.Contains(errs, "hint: the token was refused") ||
		!strings.Contains(errs, "--token or set AGENTCOM_TOKEN") {
		t.Fatalf("401: %d %q %q", code, out, errs)
	}
	code, _, errs = runCmd(t, map[string]string{"AGENTCOM_HUB": h.URL()}, "task", "list")
	if code != 1 || !strings.Contains(errs, "hint: this needs a token and none was given: pass --token or set AGENTCOM_TOKEN") {
		t.Fatalf("401 without a token: %d %q", code, errs)
	}
	// 403: a viewer may not cancel.
	viewer := h.Token("watcher", auth.RoleViewer)
	code, _, errs = runCmd(t, map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": viewer}, "task", "cancel", "task-0000000000000001")
	if code != 1 || !strings.Contains(errs, "forbidden (403)") || !strings.Contains(errs, "admin token") {
		t.Fatalf("403: %d %q", code, errs)
	}
	// Connection refused: "is the hub running at URL?".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{{"task", "list"}, {"agents"}, {"message", "send", "bob", "hi"}, {"channel", "list"}, {"admin", "health"}} {
		code, out, errs = runCmd(t, map[string]string{"AGENTCOM_HUB": dead, "AGENTCOM_TOKEN": h.AdminToken}, args...)
		if code != 1 || out != "" || !strings.Contains(errs, "connection refused") || !strings.Contains(errs, "is the hub running at "+dead+"?") {
			t.Fatalf("%v against a dead hub: %d %q %q", args, code, out, errs)
		}
	}
	// The data directory of a running hub: "another hub holds DIR".
	abs, _ := filepath.Abs(h.Dir)
	for _, args := range [][]string{
		{"token", "list", "--data", h.Dir},
		{"serve", "--addr", "127.0.0.1:0", "--data", h.Dir, "--log-format", "json", "--log-level", "error"},
	} {
		code, out, errs = runCmd(t, nil, args...)
		if code != 1 || out != "" || !strings.Contains(errs, "another hub holds "+abs) || !strings.Contains(errs, "hint: stop") {
			t.Fatalf("%v: %d %q %q", args, code, out, errs)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  []string
		not   []string
	}{
		{[]string{""}, []string{"task\t", "message\t", "channel\t", "agents\t", "completion\t"}, []string{"__complete"}},
		{[]string{"ta"}, []string{"task\t"}, []string{"token"}},
		{[]string{"task", "s"}, []string{"submit\t", "show\t", "stats\t"}, []string{"list"}},
		{[]string{"task", "submit", "--pri"}, []string{"--priority\t"}, nil},
		{[]string{"task", "list", "--"}, []string{"--status\t", "--lane\t", "--json\t", "--help\t"}, []string{"--priority"}},
		{[]string{"token", "list", "--"}, []string{"--data\t", "--json\t"}, []string{"--agent", "--role", "--file"}},
		{[]string{"help", "cha"}, []string{"channel\t"}, nil},
		{[]string{"nope", ""}, nil, []string{"task"}},
		{[]string{"task", "list", "--status", ""}, []string{"queued\n", "dead_letter\n"}, []string{"--"}},
		{[]string{"task", "list", "--status", "de"}, []string{"dead_letter"}, []string{"queued"}},
		{[]string{"task", "submit", "x", "--priority", "u"}, []string{"urgent"}, []string{"low"}},
		{[]string{"task", "list", "--json", "--"}, []string{"--status\t"}, nil},
		{[]string{"task", "list", "--hub", ""}, nil, []string{"--"}},
		{[]string{"token", "create", "--role", ""}, []string{"agent", "admin", "viewer"}, nil},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}, nil},
		{[]string{"serve", "--log-level", "w"}, []string{"warn"}, nil},
	} {
		code, out, errs := runCmd(t, nil, append([]string{"__complete"}, tc.words...)...)
		if code != 0 {
			t.Fatalf("__complete %q: %d %s", tc.words, code, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("__complete %q: no %q in\n%s", tc.words, w, out)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(out, w) {
				t.Errorf("__complete %q: unexpected %q in\n%s", tc.words, w, out)
			}
		}
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, _ := runCmd(t, nil, "completion", sh)
		if code != 0 || !strings.Contains(out, "agentcom __complete") {
			t.Errorf("completion %s: %d\n%s", sh, code, out)
		}
	}
	if code, _, errs := runCmd(t, nil, "completion", "tcsh"); code != 2 || !strings.Contains(errs, "bash, zsh or fish") {
		t.Errorf("completion tcsh: %d %s", code, errs)
	}
}

// buildBinary builds the agentcom binary into the test's own directory
// (one per run, so that -count=N runs each have theirs).
func buildBinary(t *testing.T) (string, error) {
	bin := filepath.Join(t.TempDir(), "agentcom")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return bin, nil
}

// TestRealBinary runs the built binary: exit codes, help on stdout, no
// colour when piped, and the bash completion script driving it.
func TestRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := buildBinary(t)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	h := hubtest.Start(t, "")
	if st, _ := h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": "from the binary"}); st != 201 {
		t.Fatal(st)
	}
	run := func(env []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "AGENTCOM_HUB="+h.URL(), "AGENTCOM_TOKEN="+h.AdminToken, "NO_COLOR=")
		cmd.Env = append(cmd.Env, env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}
	if code, out, errs := run(nil, "task", "submit", "--help"); code != 0 || errs != "" || !strings.HasPrefix(out, "usage: agentcom task submit") || strings.Contains(out, h.AdminToken) {
		t.Fatalf("--help: %d %q %q", code, out, errs)
	}
	if code, out, _ := run(nil, "--version"); code != 0 || !strings.HasPrefix(out, "agentcom ") {
		t.Fatalf("--version: %d %q", code, out)
	}
	if code, out, errs := run(nil, "tsak"); code != 2 || out != "" || !strings.Contains(errs, "did you mean task?") {
		t.Fatalf("tsak: %d %q %q", code, out, errs)
	}
	code, out, errs := run(nil, "task", "list")
	if code != 0 || !strings.Contains(out, "from the binary") || ansi.MatchString(out) {
		t.Fatalf("task list piped: %d %q %q", code, out, errs)
	}
	if code, _, errs := run([]string{"AGENTCOM_TOKEN=nope"}, "task", "list"); code != 1 || !strings.Contains(errs, "AGENTCOM_TOKEN") {
		t.Fatalf("bad token: %d %q", code, errs)
	}
	// The bash completion script, sourced in a real bash, completes
	// through this binary.
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Log("no bash: completion script not exercised")
		return
	}
	script := `source <(agentcom completion bash)
COMP_WORDS=(agentcom task su); COMP_CWORD=2; _agentcom; echo "${COMPREPLY[*]}"
COMP_WORDS=(agentcom ta); COMP_CWORD=1; _agentcom; echo "${COMPREPLY[*]}"`
	cmd := exec.Command(bash, "--norc", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	got, err := cmd.CombinedOutput()
	if err != nil || string(got) != "submit\ntask\n" {
		t.Fatalf("bash completion: %v\n%q", err, got)
	}
}

// TestHostileTextCannotDriveTheTerminal: descriptions, messages and
// names come from other agents; their control characters (escape
// sequences: clear screen, set title, move the cursor) never reach the
// terminal in human output. --json keeps the data as it is (escaped).
func TestHostileTextCannotDriveTheTerminal(t *testing.T) {
	h := hubtest.Start(t, "")
	const evil = "fix\x1b]0;pwned\x07 the\x1b[2J bug\u009b1m"
	if st, _ := h.Do("POST", "/api/tasks", h.AdminToken, map[string]any{"description": evil, "metadata": map[string]any{"k": evil}}); st != 201 {
		t.Fatal(st)
	}
	h.Token("bob", auth.RoleAgent)
	if st, _ := h.Do("POST", "/api/message", h.AdminToken, map[string]any{"to": "bob", "payload": map[string]any{"text": evil}}); st != 200 {
		t.Fatal(st)
	}
	env := map[string]string{"AGENTCOM_HUB": h.URL(), "AGENTCOM_TOKEN": h.AdminToken}
	_, out, _ := runCmd(t, env, "task", "list", "--json")
	id := regexp.MustCompile(`task-[0-9a-f]{16}`).FindString(out)
	for _, tty := range []bool{false, true} {
		for _, args := range [][]string{{"task", "list"}, {"task", "show", id}, {"message", "inbox", "--agent", "bob"}} {
			var o, e bytes.Buffer
			ce := &cmdEnv{stdout: &o, stderr: &e, getenv: func(k string) string { return env[k] }, stdoutTTY: tty}
			if code := dispatch(context.Background(), ce, args); code != 0 {
				t.Fatalf("%v: %d %s", args, code, e.String())
			}
			text := ansi.ReplaceAllString(o.String(), "") // our own colours
			if strings.ContainsAny(text, "\x1b\x07\u009b") || !strings.Contains(text, "fix") {
				t.Errorf("%v (tty %v) let control characters through:\n%q", args, tty, o.String())
			}
		}
	}
	_, out, _ = runCmd(t, env, "task", "show", id, "--json")
	var task struct {
		Description string `json:"description"`
	}
	mustJSON(t, "show --json", out, &task)
	if task.Description != evil {
		t.Fatalf("JSON changed the data: %q", task.Description)
	}
}

// FuzzSafe: whatever the hub sends, the human output has no control
// characters but newlines and tabs, and clean text is left alone.
func FuzzSafe(f *testing.F) {
	for _, s := range []string{"plain", "a\x1b[2Jb", "\u009b31m", "tab\tnew\nline", "\xff\xfe", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := safe(s)
		if strings.ContainsFunc(out, isUnsafe) {
			t.Fatalf("safe(%q) = %q", s, out)
		}
		if !strings.ContainsFunc(s, isUnsafe) && out != s {
			t.Fatalf("safe changed clean text %q to %q", s, out)
		}
		if kept := safeKeepColour(s); strings.ContainsFunc(sgr.ReplaceAllString(kept, ""), isUnsafe) {
			t.Fatalf("safeKeepColour(%q) = %q", s, kept)
		}
		if one := oneLine(s, 20); strings.ContainsAny(safe(one), "\n\x1b") {
			t.Fatalf("oneLine(%q) = %q", s, one)
		}
	})
}
