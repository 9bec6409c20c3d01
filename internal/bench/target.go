package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
)

// Hub kinds a scenario can run against.
const (
	KindInProcess = "in-process"
	KindChild     = "child-process"
	KindRemote    = "remote"
)

// HubCommand returns the command that runs a hub listening on addr over
// dataDir with rate limits off (normally "agentcom serve"). The bench
// starts it, waits for /health, and stops it with SIGTERM.
type HubCommand func(addr, dataDir string) *exec.Cmd

// target is a hub the scenarios drive over HTTP and WebSocket.
type target struct {
	kind string
	base string // http://host:port
	// bases are every hub's base URL when the target is several hubs of
	// one cluster (base is the first); nil for one hub.
	bases []string
	admin string // admin token
	pid   int    // process to measure; 0 when unknown (remote)
	// tokens[i] is the token agent ids[i] identifies with.
	tokens []string
	stop   func() error
}

// hub returns the base URL for the i-th agent or request: the hubs in
// turn.
func (t *target) hub(i int) string {
	if len(t.bases) == 0 {
		return t.base
	}
	return t.bases[i%len(t.bases)]
}

// wsURL is the agent socket of the i-th agent's hub.
func (t *target) wsURL(i int) string { return "ws" + strings.TrimPrefix(t.hub(i), "http") + "/ws" }

// tokenCreator issues tokens; auth.Tokens satisfies it.
type tokenCreator interface {
	Create(agent string, role auth.Role) (string, error)
}

// startTarget brings up the hub a scenario runs against and returns a
// token for each of ids.
func startTarget(ctx context.Context, o *Options, child bool, ids []string) (*target, error) {
	switch {
	case o.remote():
		return remoteTarget(ctx, o, ids)
	case child && o.HubCommand != nil:
		return childTarget(ctx, o, ids)
	default:
		return inProcessTarget(ctx, o, ids)
	}
}

// inProcessTarget runs a hub in this process on a fresh data directory,
// with rate limits off.
func inProcessTarget(ctx context.Context, o *Options, ids []string) (*target, error) {
	dir, err := o.tempDir("hub-")
	if err != nil {
		return nil, err
	}
	t, err := startInProcess(ctx, dir, ids)
	if err != nil {
		os.RemoveAll(dir)
	}
	return t, err
}

func startInProcess(ctx context.Context, dir string, ids []string) (*target, error) {
	cfg := hub.DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.Version = "127.0.0.1:0", dir, "bench"
	// Every task is submitted with one admin token: no per-submitter quota,
	// as no rate limits.
	cfg.RateLimits = nil
	cfg.Queue.MaxQueuedPerSubmitter = 0
	h, err := hub.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("start in-process hub: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		h.Shutdown(context.Background())
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := h.Serve(ln); err != nil {
		ln.Close()
		h.Shutdown(context.Background())
		return nil, fmt.Errorf("serve: %w", err)
	}
	t := &target{kind: KindInProcess, base: h.URL(), pid: selfPID(), stop: func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := h.Shutdown(sctx)
		return errors.Join(err, os.RemoveAll(dir))
	}}
	if t.admin, t.tokens, err = issueTokens(ctx, h.Tokens, ids); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// childTarget runs the hub as a child process, so its memory and CPU can
// be measured apart from the load generator's. Tokens are written to the
// data directory before the hub starts (the hub locks its tables).
func childTarget(ctx context.Context, o *Options, ids []string) (*target, error) {
	dir, err := o.tempDir("hub-")
	if err != nil {
		return nil, err
	}
	t, err := startChild(ctx, o, dir, ids)
	if err != nil {
		os.RemoveAll(dir)
	}
	return t, err
}

func startChild(ctx context.Context, o *Options, dir string, ids []string) (*target, error) {
	d, db, err := boltdriver.OpenDir(dir, store.Options{})
	if err != nil {
		return nil, err
	}
	toks, err := auth.New(d.Tokens())
	if err != nil {
		db.Close()
		return nil, err
	}
	admin, agentToks, err := issueTokens(ctx, toks, ids)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	cmd := o.HubCommand(addr, dir)
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start hub process: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		defer os.RemoveAll(dir)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == -1 {
				return nil // ended by the signal itself
			}
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("hub process did not stop within 30s; killed")
		}
	}
	t := &target{kind: KindChild, base: "http://" + addr, admin: admin, tokens: agentToks, pid: cmd.Process.Pid, stop: stop}
	if err := waitHealth(ctx, t.base, 30*time.Second, exited, true); err != nil {
		stop()
		return nil, fmt.Errorf("hub process: %w; its output: %s", err, stderr.tail(2000))
	}
	return t, nil
}

// remoteTarget uses running hubs. Agents identify with the admin token
// (an admin may act as any agent), so the run leaves no tokens behind.
func remoteTarget(ctx context.Context, o *Options, ids []string) (*target, error) {
	if o.Token == "" {
		return nil, errors.New("--hub needs --token (an admin token)")
	}
	bases := make([]string, len(o.HubURLs))
	for i, u := range o.HubURLs {
		bases[i] = strings.TrimRight(u, "/")
		if err := checkHealthy(ctx, bases[i]); err != nil {
			return nil, err
		}
	}
	t := &target{kind: KindRemote, base: bases[0], admin: o.Token, stop: func() error { return nil }}
	if len(bases) > 1 {
		t.bases = bases
	}
	t.tokens = make([]string, len(ids))
	for i := range ids {
		t.tokens[i] = o.Token
	}
	return t, nil
}

// issueTokens creates an admin token and one agent token per id, in
// parallel so the store groups the writes.
func issueTokens(ctx context.Context, tc tokenCreator, ids []string) (string, []string, error) {
	admin, err := tc.Create("bench-admin", auth.RoleAdmin)
	if err != nil {
		return "", nil, fmt.Errorf("admin token: %w", err)
	}
	out := make([]string, len(ids))
	err = parallel(ctx, len(ids), 64, func(i int) error {
		tok, err := tc.Create(ids[i], auth.RoleAgent)
		out[i] = tok
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("agent tokens: %w", err)
	}
	return admin, out, nil
}

// waitHealth polls GET /health until the hub answers (with 200 when
// ready is set: anything else, a loading hub's 503 included, is "not
// yet"), the time is up, or exited (nil: not watched) reports the process
// gone. It polls every millisecond: the restart scenario times the first
// answer with it. Each answer is read to the end so the connection is
// reused: a loading hub is polled on one connection, not a new one every
// millisecond beside its load.
func waitHealth(ctx context.Context, base string, within time.Duration, exited <-chan error, ready bool) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	want := "answer"
	if ready {
		want = "answer 200"
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if !ready || resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s/health did not %s within %v (last error: %v)", base, want, within, err)
		case err := <-exited:
			return fmt.Errorf("exited before serving: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
}

// checkHealthy asks a running hub's GET /health once.
func checkHealthy(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("hub %s: %w", base, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("hub %s: GET /health answered %s", base, resp.Status)
	}
	return nil
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// lockedBuffer collects a child's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // enough to explain a failure
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}
