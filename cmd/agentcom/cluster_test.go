package main

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/testenv"
)

// TestServeClusterFlagsRefused: cluster flags that cannot work are refused
// before anything starts, saying which flag and why.
func TestServeClusterFlagsRefused(t *testing.T) {
	pg := "postgres://postgres@127.0.0.1:1/none?sslmode=disable"
	for _, c := range []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"--bus", "nats://127.0.0.1:4222"}, nil, 2, "--store postgres://"},
		{nil, map[string]string{"AGENTCOM_BUS": "postgres"}, 2, "--store postgres://"},
		{[]string{"--bus", "carrier-pigeon"}, nil, 2, "--bus"},
		{[]string{"--store", pg, "--hub-id", "no spaces"}, nil, 2, "--hub-id"},
		{[]string{"--store", pg, "--hub-id", strings.Repeat("x", 65)}, nil, 2, "--hub-id"},
		{[]string{"--store", pg, "--addr", ":0"}, nil, 2, "--advertise"},
		{[]string{"--store", pg, "--addr", "0.0.0.0:4000"}, nil, 2, "--advertise"},
		{[]string{"--store", pg, "--addr", "127.0.0.1:0"}, nil, 2, "--advertise"},
		{[]string{"--store", pg, "--advertise", "ftp://hub"}, nil, 2, "--advertise"},
		{[]string{"--store", pg, "--advertise", "http://hub:4000/x?y"}, nil, 2, "--advertise"},
		{[]string{"--store", pg, "--advertise", "http://127.0.0.1:4000", "--bus", "local"}, nil, 1, "--bus local"},
	} {
		args := append([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, c.args...)
		code, _, errs := runCmd(t, c.env, args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v %v: exit %d, want %d with %q; stderr:\n%s", c.args, c.env, code, c.code, c.want, errs)
		}
		if strings.Contains(errs, "panic") {
			t.Errorf("%v: %s", c.args, errs)
		}
	}
}

// TestServeCluster: two `agentcom serve` on one PostgreSQL form a cluster;
// /health on each names it, its role and the same leader.
func TestServeCluster(t *testing.T) {
	store := testenv.Postgres(t)
	addrs := make([]string, 2)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		ln.Close()
	}
	env := map[string]string{"AGENTCOM_STORE": store}
	ids := []string{"hub-one", "hub-two"}
	for i, addr := range addrs {
		runBG(t, env, "serve", "--addr", addr, "--data", t.TempDir(), "--hub-id", ids[i],
			"--log-format", "json", "--log-level", "error")
		// The first leads before the second starts.
		waitHealth(t, addr, func(cl map[string]any) bool { return cl["hub_id"] == ids[i] })
	}
	for i, addr := range addrs {
		cl := waitHealth(t, addr, func(cl map[string]any) bool {
			l, _ := cl["leader"].(map[string]any)
			return l["hub_id"] == "hub-one"
		})
		role := map[bool]string{true: "leader", false: "follower"}[i == 0]
		if cl["role"] != role || cl["leader"].(map[string]any)["url"] != "http://"+addrs[0] {
			t.Fatalf("health of %s: %v", ids[i], cl)
		}
	}
}

// waitHealth polls GET /health at addr until its answer satisfies ok
// (10 s) and returns it.
func waitHealth(t *testing.T, addr string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last any
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			last = body
			if body != nil && ok(body) {
				return body
			}
		} else {
			last = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("health at %s: %v", addr, last)
	return nil
}
