package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/powerloss"
)

// TestPowerLossKeepsAcknowledgedTasksAndMessages runs a hub in a child
// process under the powerloss tracer while submitters create tasks and
// send messages to offline agents, "cuts the power" in the middle of the
// submissions (SIGKILL plus every unsynced write undone), restarts the hub
// on the same data and checks that every task answered 201 and every
// message answered "sent" is there. It fails when the store acknowledges
// a commit before it is synced (bbolt's NoSync), which no SIGKILL test
// can see because the page cache survives a killed process.
func TestPowerLossKeepsAcknowledgedTasksAndMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns hub processes")
	}
	const recipients = 8 // messages spread so no mailbox reaches its cap of 100
	dir := t.TempDir()
	setup, err := hub.New(crashConfig(dir, "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := setup.Tokens.Create("admin", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	// The recipients are known agents (direct messages to unknown ids are
	// refused), offline for the whole test.
	for i := range recipients {
		if _, err := setup.Tokens.Create(fmt.Sprintf("offline-%d", i), auth.RoleAgent); err != nil {
			t.Fatal(err)
		}
	}
	if err := setup.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildHub$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashAddrEnv+"=127.0.0.1:0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := powerloss.StartT(t, cmd, dir)
	base := "http://" + childAddr(t, out, p.Exited())

	// Submitters run until the power goes; the cut comes once enough of
	// both kinds are acknowledged, while requests are still in flight.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var tasks []string
	msgs := map[string][]string{} // recipient -> acknowledged message ids
	nMsgs := 0
	enough := make(chan struct{})
	var once sync.Once
	check := func() {
		if len(tasks) >= 60 && nMsgs >= 60 {
			once.Do(func() { close(enough) })
		}
	}
	post := func(path string, body any) (int, map[string]any, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		err = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if w%2 == 0 {
					st, m, err := post("/api/tasks", map[string]any{"description": fmt.Sprint("power task ", w, "-", n)})
					if err != nil {
						return // the power went
					}
					if id, _ := m["task_id"].(string); st == http.StatusCreated && id != "" {
						mu.Lock()
						tasks = append(tasks, id)
						check()
						mu.Unlock()
					}
					continue
				}
				to := fmt.Sprintf("offline-%d", (w*1000+n)%recipients)
				st, m, err := post("/api/message", map[string]any{"to": to, "payload": map[string]any{"n": n}})
				if err != nil {
					return
				}
				if id, _ := m["id"].(string); st == http.StatusOK && id != "" {
					mu.Lock()
					msgs[to] = append(msgs[to], id)
					nMsgs++
					check()
					mu.Unlock()
				}
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(90 * time.Second):
		close(stop)
		t.Fatal("submissions too slow")
	}
	st, err := p.Crash()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("power cut after %d tasks and %d messages acknowledged: %+v", len(tasks), nMsgs, st)

	h := hubtest.Start(t, dir)
	lost := 0
	for _, id := range tasks {
		if code, _ := h.Do("GET", "/api/tasks/"+id, admin, nil); code != http.StatusOK {
			if lost++; lost <= 3 {
				t.Errorf("acknowledged task %s lost in the power cut: GET %d", id, code)
			}
		}
	}
	for to, ids := range msgs {
		_, box := h.Do("GET", "/api/mailbox/"+to, admin, nil)
		have := map[string]bool{}
		for _, m := range box["messages"].([]any) {
			have[m.(map[string]any)["id"].(string)] = true
		}
		for _, id := range ids {
			if !have[id] {
				if lost++; lost <= 6 {
					t.Errorf("acknowledged message %s to %s lost in the power cut", id, to)
				}
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged writes lost", lost)
	}
}
