package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPosterSpeaksHTTP posts through poster to a real net/http server:
// the request arrives as net/http's client would send it, and every
// response shape the server writes (sized, chunked, empty, closing) reads
// back.
func TestPosterSpeaksHTTP(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer tok" ||
			r.Header.Get("Content-Type") != "application/json" || r.ContentLength != int64(len(body)) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/sized":
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write(body)
		case "/chunked":
			w.WriteHeader(http.StatusCreated)
			for range 3 {
				_, _ = w.Write(body)
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte("gone"))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := newPoster(4)
	defer p.closeIdle()
	ctx := context.Background()
	body := []byte(`{"description":"x"}`)
	cases := []struct {
		path   string
		status int
		want   string
	}{
		{"/sized", 201, string(body)},
		{"/sized?x=1", 201, string(body)},
		{"/chunked", 201, strings.Repeat(string(body), 3)},
		{"/empty", 204, ""},
		{"/close", 409, "gone"},
		{"/sized", 201, string(body)},
	}
	for _, c := range cases {
		status, got, err := p.post(ctx, srv.URL+c.path, "tok", body)
		if err != nil || status != c.status || string(got) != c.want {
			t.Fatalf("POST %s: %d %q %v, want %d %q", c.path, status, got, err, c.status, c.want)
		}
	}
	// One connection carried everything up to the close, a second the rest.
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (keep-alive, then a new one after Connection: close)", n)
	}
	if _, _, err := p.post(ctx, "https://"+srv.Listener.Addr().String()+"/x", "tok", body); !errors.Is(err, errNotPlainHTTP) {
		t.Fatalf("https URL: %v, want errNotPlainHTTP", err)
	}
}

// TestPosterRetriesClosedIdleConn: a kept-alive connection the server
// closed while idle is replaced, and the request goes through once.
func TestPosterRetriesClosedIdleConn(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	p := newPoster(4)
	defer p.closeIdle()
	ctx := context.Background()
	if status, _, err := p.post(ctx, srv.URL+"/a", "tok", nil); err != nil || status != 201 {
		t.Fatalf("first POST: %d %v", status, err)
	}
	srv.CloseClientConnections()
	if status, _, err := p.post(ctx, srv.URL+"/a", "tok", nil); err != nil || status != 201 {
		t.Fatalf("POST after the server closed the idle connection: %d %v", status, err)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2", n)
	}
}

// TestPosterHonoursContext: a hub that never answers is left when the
// context ends.
func TestPosterHonoursContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	p := newPoster(4)
	defer p.closeIdle()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := p.post(ctx, srv.URL+"/slow", "tok", nil)
		errc <- err
	}()
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("POST to a silent hub after cancel: %v, want context.Canceled", err)
	}
}
