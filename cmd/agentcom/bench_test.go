package main

import (
	"encoding/json"
	"strings"
	"testing"
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
