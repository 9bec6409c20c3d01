package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// The bench command parses its flags, runs a scenario and prints the
// figures as one JSON object (the scenarios themselves are tested in
// internal/bench).
func TestBenchCommandJSON(t *testing.T) {
	code, out, errOut := runCmd(t, nil, "bench", "--scenario", "storage", "--storage-records", "500",
		"--storage-writers", "1", "--storage-phase", "100ms", "--tmp", t.TempDir(), "--json", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Scenarios []struct {
			Scenario string `json:"scenario"`
			Error    string `json:"error"`
			Figures  []struct {
				Name string `json:"name"`
			} `json:"figures"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Scenario != "storage" || rep.Scenarios[0].Error != "" ||
		len(rep.Scenarios[0].Figures) == 0 {
		t.Fatalf("report: %+v", rep)
	}
}

func TestBenchCommandRejects(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--scenario", "nope"},
		{"bench", "--hub-process", "sideways"},
	} {
		code, _, errOut := runCmd(t, nil, args...)
		if code == 0 || !strings.Contains(errOut, "agentcom bench") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// --hub takes the hubs of a cluster; the report says how many.
func TestBenchCommandSeveralHubs(t *testing.T) {
	a, b := hubtest.Start(t, ""), hubtest.Start(t, "")
	if err := b.Tokens.Import(a.AdminToken, "admin", auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, map[string]string{"AGENTCOM_TOKEN": a.AdminToken}, "bench", "--scenario", "tasks",
		"--hub", a.URL(), "--hub", b.URL(), "--agents", "2", "--tasks", "4", "--samples", "2", "--json", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Hubs      int      `json:"hubs"`
		HubURLs   []string `json:"hub_urls"`
		Scenarios []struct {
			Params map[string]any `json:"params"`
			Error  string         `json:"error"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	if rep.Hubs != 2 || len(rep.HubURLs) != 2 || len(rep.Scenarios) != 1 || rep.Scenarios[0].Params["hubs"] != float64(2) || rep.Scenarios[0].Error != "" {
		t.Fatalf("report: %s", out)
	}
}
