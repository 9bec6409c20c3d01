package onboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/sidecar"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

func openReg(c *hub.Config) { c.OpenRegistration = true }

// localOpts points every local path into a temp dir.
func localOpts(t *testing.T, hubURL string) Options {
	t.Helper()
	dir := t.TempDir()
	return Options{HubURLs: []string{hubURL}, Home: filepath.Join(dir, "home"), UnitDir: filepath.Join(dir, "units"),
		Binary: "/opt/agent com/agentcom", VerifyTimeout: 20 * time.Second, Out: &bytes.Buffer{}}
}

func TestNames(t *testing.T) {
	names := ShipNames()
	if len(names) != 65 {
		t.Fatalf("%d names", len(names))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] || !ValidName("gcu-"+n) {
			t.Fatalf("bad or duplicate name %q", n)
		}
		seen[n] = true
	}
	for i := 0; i < 50; i++ {
		if g := GenerateName(); !strings.HasPrefix(g, "gcu-") || !seen[strings.TrimPrefix(g, "gcu-")] {
			t.Fatalf("GenerateName = %q", g)
		}
	}
	for n, ok := range map[string]bool{"a": true, "gcu-x.y_z": true, "": false, "../x": false, "a/b": false, "-x": false, ".x": false} {
		if ValidName(n) != ok {
			t.Errorf("ValidName(%q) != %v", n, ok)
		}
	}
}

func TestOnboardOpenRegistrationEndToEnd(t *testing.T) {
	h := hubtest.Start(t, "", openReg)
	o := localOpts(t, h.URL())
	o.Capabilities = []string{"code", "review"}
	res, err := Onboard(context.Background(), o)
	if err != nil {
		t.Fatalf("onboard: %v\n%s", err, o.Out)
	}
	if !strings.HasPrefix(res.Name, "gcu-") || res.ServiceStarted || res.VerifyTaskID == "" {
		t.Fatalf("result = %+v", res)
	}
	fi, err := os.Stat(res.ConfigPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode: %v %v", fi.Mode(), err)
	}
	if di, _ := os.Stat(res.Dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", di.Mode())
	}
	cfg, err := sidecar.LoadConfig(res.ConfigPath, nil)
	if err != nil || cfg.AgentID != res.Name || len(cfg.Token) != 64 || cfg.HubURL != h.WSURL() || cfg.HubAPIURL != h.URL() ||
		strings.Join(cfg.Capabilities, ",") != "code,review" {
		t.Fatalf("config = %+v, %v", cfg, err)
	}
	// One hub: the config has the original sidecar's shape.
	if raw, err := os.ReadFile(res.ConfigPath); err != nil || strings.Contains(string(raw), "hub_urls") {
		t.Fatalf("one hub wrote hub_urls: %s %v", raw, err)
	}
	unit, err := os.ReadFile(res.UnitPath)
	if err != nil || !strings.Contains(string(unit), `ExecStart="/opt/agent com/agentcom" sidecar --config "`+res.ConfigPath+`"`) {
		t.Fatalf("unit = %s, %v", unit, err)
	}
	if !strings.Contains(o.Out.(*bytes.Buffer).String(), "systemctl --user enable --now "+UnitName(res.Name)) {
		t.Errorf("start command not printed:\n%s", o.Out)
	}
	// The test task really went through this agent and completed.
	st, task := h.Do("GET", "/api/tasks/"+res.VerifyTaskID, h.AdminToken, nil)
	if st != 200 || task["status"] != "completed" || task["assigned_to"] != res.Name {
		t.Fatalf("test task = %d %v", st, task)
	}

	// Onboarding the same name again is refused locally.
	o2 := o
	o2.Name = res.Name
	if _, err := Onboard(context.Background(), o2); !errors.Is(err, ErrAlreadyOnboarded) {
		t.Fatalf("second onboard: %v", err)
	}

	// Offboard: a token that is neither an admin's nor this agent's own
	// keeps everything.
	stranger := h.Token("stranger", auth.RoleAgent)
	if err := Offboard(context.Background(), OffboardOptions{Name: res.Name, AdminToken: stranger, Home: o.Home, UnitDir: o.UnitDir}); err == nil {
		t.Fatal("offboard with another agent's token succeeded")
	}
	if _, err := os.Stat(res.ConfigPath); err != nil {
		t.Fatal("files removed after a failed revoke")
	}
	var out bytes.Buffer
	if err := Offboard(context.Background(), OffboardOptions{Name: res.Name, AdminToken: h.AdminToken, Home: o.Home, UnitDir: o.UnitDir, Out: &out}); err != nil {
		t.Fatalf("offboard: %v\n%s", err, out.String())
	}
	if st, _ := h.Do("GET", "/api/tasks", cfg.Token, nil); st != 401 {
		t.Fatalf("revoked token still works: %d", st)
	}
	for _, p := range []string{res.Dir, res.UnitPath} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists", p)
		}
	}
}

func TestOnboardJoinSecret(t *testing.T) {
	h := hubtest.Start(t, "", func(c *hub.Config) { c.JoinSecret = "s3cret" })
	o := localOpts(t, h.URL())
	o.Name = "worker-1"
	if _, err := Onboard(context.Background(), o); !errors.Is(err, ErrRegistrationClosed) || !strings.Contains(err.Error(), "--join-secret") {
		t.Fatalf("without secret: %v", err)
	}
	o.JoinSecret = "wrong"
	if _, err := Onboard(context.Background(), o); !errors.Is(err, ErrRegistrationClosed) {
		t.Fatalf("wrong secret: %v", err)
	}
	o.JoinSecret = "s3cret"
	res, err := Onboard(context.Background(), o)
	if err != nil || res.Name != "worker-1" {
		t.Fatalf("with secret: %+v %v\n%s", res, err, o.Out)
	}
	// The name is now taken on the hub.
	o3 := localOpts(t, h.URL())
	o3.Name, o3.JoinSecret = "worker-1", "s3cret"
	if _, err := Onboard(context.Background(), o3); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("taken name: %v", err)
	}
}

func TestOnboardInvalidNameAndUnreachableHub(t *testing.T) {
	o := localOpts(t, "http://127.0.0.1:1")
	if _, err := Onboard(context.Background(), o); err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("unreachable: %v", err)
	}
	h := hubtest.Start(t, "", openReg)
	o = localOpts(t, h.URL())
	o.Name = "../evil"
	if _, err := Onboard(context.Background(), o); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("invalid name: %v", err)
	}
}

func TestVerifyTimeoutCancelsTheTestTask(t *testing.T) {
	h := hubtest.Start(t, "", openReg)
	o := localOpts(t, h.URL())
	o.Name = "silent"
	o.VerifyTimeout = time.Second
	// A sidecar that never connects.
	o.RunSidecar = func(ctx context.Context, _ sidecar.Config) error { <-ctx.Done(); return nil }
	res, err := Onboard(context.Background(), o)
	if !errors.Is(err, ErrVerifyFailed) || res.VerifyTaskID == "" {
		t.Fatalf("verify: %+v %v", res, err)
	}
	if st, task := h.Do("GET", "/api/tasks/"+res.VerifyTaskID, h.AdminToken, nil); task["status"] != "cancelled" {
		t.Fatalf("test task not cleaned up: %d %v", st, task)
	}
}

func TestSystemctlIsUsedWhenGiven(t *testing.T) {
	h := hubtest.Start(t, "", openReg)
	o := localOpts(t, h.URL())
	o.Name = "svc"
	o.SkipVerify = true
	bin := t.TempDir()
	log := filepath.Join(bin, "calls")
	fake := filepath.Join(bin, "systemctl")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"$*\" >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o.Systemctl = fake
	res, err := Onboard(context.Background(), o)
	if err != nil || !res.ServiceStarted {
		t.Fatalf("onboard: %+v %v", res, err)
	}
	if err := Offboard(context.Background(), OffboardOptions{Name: "svc", AdminToken: h.AdminToken, Home: o.Home, UnitDir: o.UnitDir, Systemctl: fake}); err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(log)
	want := "--user daemon-reload\n--user enable --now agentcom-sidecar-svc.service\n--user disable --now agentcom-sidecar-svc.service\n--user daemon-reload\n"
	if string(calls) != want {
		t.Fatalf("systemctl calls:\n%s\nwant:\n%s", calls, want)
	}
}

// The onboarding test task goes through the configured run_command: the
// agent's own output is the task's result.
func TestOnboardVerificationRunsTheConfiguredCommand(t *testing.T) {
	h := hubtest.Start(t, "", openReg)
	o := localOpts(t, h.URL())
	marker := filepath.Join(t.TempDir(), "ran")
	o.RunCommand = `echo "agent says hello for $TASK_ID"; : > ` + marker
	res, err := Onboard(context.Background(), o)
	if err != nil {
		t.Fatalf("onboard: %v\n%s", err, o.Out)
	}
	out := o.Out.(*bytes.Buffer).String()
	if !strings.Contains(out, "the test task goes through run_command") || !strings.Contains(out, "no sidecar service is running yet") {
		t.Fatalf("output:\n%s", out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the run command did not run")
	}
	_, task := h.Do("GET", "/api/tasks/"+res.VerifyTaskID, h.AdminToken, nil)
	r, _ := task["result"].(map[string]any)
	if task["status"] != "completed" || !strings.Contains(r["output"].(string), "agent says hello for "+res.VerifyTaskID) {
		t.Fatalf("test task = %v", task)
	}
	o2 := localOpts(t, h.URL())
	o2.WakeCommand, o2.RunCommand = "x", "y"
	if _, err := Onboard(context.Background(), o2); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("both commands: %v", err)
	}
}

// Onboarding onto several hubs of a cluster, the first of them down:
// the agent registers with the one that answers, the config lists every
// hub (hub_urls, hub_url the first for the original sidecar), and the
// test task completes through a sidecar that skipped the dead hub.
func TestOnboardSeveralHubs(t *testing.T) {
	h := hubtest.Start(t, "", openReg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	o := localOpts(t, dead)
	o.HubURLs = append(o.HubURLs, h.URL())
	res, err := Onboard(context.Background(), o)
	if err != nil {
		t.Fatalf("onboard: %v\n%s", err, o.Out)
	}
	out := o.Out.(*bytes.Buffer).String()
	if !strings.Contains(out, "checking the 2 hubs") || !strings.Contains(out, dead+"... not reachable") || !strings.Contains(out, h.URL()+"... ok, registering here") {
		t.Errorf("output:\n%s", out)
	}
	raw, err := os.ReadFile(res.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		HubURL    string   `json:"hub_url"`
		HubURLs   []string `json:"hub_urls"`
		HubAPIURL string   `json:"hub_api_url"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	deadWS := "ws" + strings.TrimPrefix(dead, "http") + "/ws"
	if file.HubURL != deadWS || strings.Join(file.HubURLs, " ") != deadWS+" "+h.WSURL() || file.HubAPIURL != h.URL() {
		t.Fatalf("config = %s", raw)
	}
	if st, task := h.Do("GET", "/api/tasks/"+res.VerifyTaskID, h.AdminToken, nil); st != 200 || task["status"] != "completed" || task["assigned_to"] != res.Name {
		t.Fatalf("test task = %d %v", st, task)
	}

	for name, hubs := range map[string][]string{
		"twice":   {h.URL(), h.URL() + "/"},
		"bad URL": {h.URL(), "ftp://x"},
	} {
		o := localOpts(t, hubs[0])
		o.HubURLs, o.Name = hubs, "never-"+strings.ReplaceAll(name, " ", "-")
		if _, err := Onboard(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--hub") {
			t.Errorf("%s: %v", name, err)
		}
		if out := o.Out.(*bytes.Buffer).String(); out != "" {
			t.Errorf("%s: went on to the hub although the hub list is refused:\n%s", name, out)
		}
	}
}
