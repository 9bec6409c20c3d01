package hub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/api"
	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/store"
)

// digest is a hash of every record of every table: equal digests mean no
// stored state changed.
func digest(t testing.TB, h *hubtest.Hub) [32]byte {
	t.Helper()
	sum := sha256.New()
	for _, name := range h.DB.Names() {
		err := h.DB.Table(name).View(func(tx *store.Tx) error {
			return tx.ForEach(func(k, v []byte) error {
				fmt.Fprintf(sum, "%s\x00%d:%s%d:%s", name, len(k), k, len(v), v)
				return nil
			})
		})
		if err != nil {
			t.Fatalf("digest %s: %v", name, err)
		}
	}
	return [32]byte(sum.Sum(nil))
}

// FuzzWSFrame sends one fuzzed frame on an identified agent socket of a
// real hub, then a ping. Invariants: the hub does not crash; everything
// it sends back is a JSON object with a string type, and errors carry a
// string code; a refused frame (an error reply, or a close with one of the
// hub's policy codes) changes no stored state.
func FuzzWSFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping"}`, `{"type":"message","to":"b","payload":{}}`, `{"type":"message","to":"b","payload":[]}`,
		`{"type":"task_complete","task_id":"task-0000000000000000","generation":1}`,
		`{"type":"identify","agent_id":"other","token":"x"}`, `{"type":"channel_publish","channel":"#x","payload":{}}`,
		`{"type":"channel_subscribe","channel":""}`, `{"type":"status","status":1}`, `[]`, `null`, `{`, "\xff\xfe",
		`{"type":"task_progress","task_id":"../../etc","progress":1e309}`, `{"type":"` + strings.Repeat("a", 300) + `"}`,
	} {
		f.Add([]byte(s))
	}
	h := hubtest.Start(f, "")
	tok := h.Token("fz", auth.RoleAgent)
	f.Fuzz(func(t *testing.T, frame []byte) {
		// h.Connect would report through the fuzz target's F; this
		// iteration's t must be used instead.
		c := hubtest.Dial(t, h.WSURL())
		defer c.Close()
		c.Send(map[string]any{"type": "identify", "agent_id": "fz", "token": tok, "name": "fz",
			"capabilities": []string{}, "client_type": "sidecar", "protocol_version": 1})
		c.Expect("identified")
		before := digest(t, h)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Conn.Write(ctx, websocket.MessageText, frame); err != nil {
			t.Fatalf("write: %v", err)
		}
		refused := false
		if err := c.TrySend(`{"type":"ping"}`); err != nil {
			refused = true // closed already
		}
		for !refused {
			m := c.Next(10 * time.Second)
			if m == nil {
				code, reason := c.Closed(10 * time.Second)
				if !slices.Contains([]websocket.StatusCode{protocol.ClosePolicy, websocket.StatusMessageTooBig,
					websocket.StatusInvalidFramePayloadData, protocol.CloseReplaced}, code) {
					t.Fatalf("frame %q: socket ended with %d %q", frame, code, reason)
				}
				refused = true
				break
			}
			typ, ok := m["type"].(string)
			if !ok {
				t.Fatalf("frame %q: reply without a string type: %v", frame, m)
			}
			if typ == "error" {
				if _, ok := m["error"].(string); !ok {
					t.Fatalf("frame %q: error without a string code: %v", frame, m)
				}
				refused = true
			}
			if typ == "pong" {
				break
			}
		}
		if refused && digest(t, h) != before {
			t.Fatalf("frame %q was refused but changed stored state", frame)
		}
	})
}

// fuzzableRoutes are the JSON routes, without the ones that restart the
// hub, replace tables or revoke the fuzzer's own tokens.
func fuzzableRoutes(h *hubtest.Hub) []api.Route {
	var out []api.Route
	for _, r := range h.API.Routes() {
		switch {
		case r.Raw != nil,
			strings.HasPrefix(r.Path, "/api/admin/"),
			r.Method == "DELETE" && r.Path == "/admin/tokens/{agent_id}":
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b api.Route) int { return strings.Compare(a.Method+a.Path, b.Method+b.Path) })
	return out
}

// FuzzHTTPRoute sends a fuzzed request to one of the hub's JSON routes
// (chosen by index, its path parameters and query filled from the input),
// as an admin or an agent. Invariants: no 5xx; the body is a JSON object;
// a 4xx carries a string "error" and changes no stored state.
func FuzzHTTPRoute(f *testing.F) {
	f.Add(uint8(0), false, "x", "", []byte(`{}`))
	f.Add(uint8(3), true, "a1", "limit=5", []byte(`{"description":"t","priority":"high"}`))
	f.Add(uint8(7), false, "task-0000000000000000", "since=-1", []byte(`{"to":"b","payload":{}}`))
	f.Add(uint8(11), true, "../x", "status=weird", []byte(`[1,2]`))
	f.Add(uint8(20), false, "%00", "cursor=18446744073709551616", []byte(`{"mailbox_ttl_ms":-1}`))
	f.Add(uint8(30), true, "c", "", []byte(`{"name":"`+strings.Repeat("n", 5000)+`"}`))
	h := hubtest.Start(f, "")
	agentTok := h.Token("a1", auth.RoleAgent)
	routes := fuzzableRoutes(h)
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, pick uint8, asAgent bool, param, query string, body []byte) {
		r := routes[int(pick)%len(routes)]
		path := r.Path
		for {
			i := strings.IndexByte(path, '{')
			j := strings.IndexByte(path, '}')
			if i < 0 || j < i {
				break
			}
			path = path[:i] + urlSegment(param) + path[j+1:]
		}
		url := h.URL() + path
		if query != "" {
			url += "?" + strings.Map(func(r rune) rune {
				if r < 0x21 || r == '#' || r > 0x7e {
					return -1
				}
				return r
			}, query)
		}
		req, err := http.NewRequest(r.Method, url, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		tok := h.AdminToken
		if asAgent {
			tok = agentTok
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		before := digest(t, h)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.Method, url, err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: read: %v", r.Method, url, err)
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", r.Method, url, body, resp.StatusCode, raw)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object: %v", r.Method, url, raw, err)
		}
		if resp.StatusCode >= 400 {
			if _, ok := m["error"].(string); !ok {
				t.Fatalf("%s %s: %d without a string error: %s", r.Method, url, resp.StatusCode, raw)
			}
			if digest(t, h) != before {
				t.Fatalf("%s %s %q: refused with %d but changed stored state", r.Method, url, body, resp.StatusCode)
			}
		}
	})
}

// urlSegment makes a fuzzed path parameter usable in a URL path.
func urlSegment(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}
