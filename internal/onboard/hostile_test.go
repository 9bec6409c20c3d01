package onboard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostileHub answers health checks and registrations with reg, whatever
// was asked.
func hostileHub(t *testing.T, reg map[string]any) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/health":
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok"})
		case "/api/onboard/register":
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(reg)
		case "/api/agents":
			_ = json.NewEncoder(w).Encode(map[string]any{"agents": []any{}})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A hostile or compromised hub cannot make onboard write outside --home,
// nor inject lines into the systemd unit: every part of its answer is
// checked like user input, and nothing is written when one fails.
func TestOnboardRefusesHostileHubAnswers(t *testing.T) {
	token := strings.Repeat("ab", 32)
	cases := map[string]map[string]any{
		"escaping id":         {"agent_id": "../../escape-dir", "token": token, "hub_ws_url": "ws://h/ws"},
		"id with a newline":   {"agent_id": "victim\nExecStartPre=/bin/touch /tmp/pwned", "token": token, "hub_ws_url": "ws://h/ws"},
		"another valid id":    {"agent_id": "someone-else", "token": token, "hub_ws_url": "ws://h/ws"},
		"token with newline":  {"agent_id": "victim", "token": token[:60] + "\nX=1", "hub_ws_url": "ws://h/ws"},
		"short token":         {"agent_id": "victim", "token": "abc", "hub_ws_url": "ws://h/ws"},
		"ws url with newline": {"agent_id": "victim", "token": token, "hub_ws_url": "ws://h/ws\nExecStartPre=/bin/true"},
		"ws url other scheme": {"agent_id": "victim", "token": token, "hub_ws_url": "file:///etc/passwd"},
		"ws url with user":    {"agent_id": "victim", "token": token, "hub_ws_url": "wss://u:p@h/ws"},
	}
	for name, reg := range cases {
		for _, asked := range []string{"victim", ""} {
			t.Run(name+"/asked="+asked, func(t *testing.T) {
				srv := hostileHub(t, reg)
				o := localOpts(t, srv.URL)
				o.Name = asked
				o.SkipVerify = true
				_, err := Onboard(context.Background(), o)
				if !errors.Is(err, ErrHostileHub) {
					t.Fatalf("onboard accepted %v: %v", reg, err)
				}
				root := filepath.Dir(o.Home)
				var written []string
				_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
					if err == nil && !fi.IsDir() {
						written = append(written, p)
					}
					return nil
				})
				if len(written) > 0 {
					t.Fatalf("files written for a refused answer: %v", written)
				}
				if _, err := os.Stat(filepath.Join(root, "escape-dir")); err == nil {
					t.Fatal("escape-dir created outside --home")
				}
			})
		}
	}
}

// Unit values are quoted for systemd or refused: a line break in a path
// cannot start a new directive.
func TestSystemdQuote(t *testing.T) {
	for in, want := range map[string]string{
		`/opt/agent com/agentcom`: `"/opt/agent com/agentcom"`,
		`/a"b\c`:                  `"/a\"b\\c"`,
		`/x/%h/$HOME`:             `"/x/%%h/$$HOME"`,
	} {
		if got, err := systemdQuote(in); err != nil || got != want {
			t.Errorf("systemdQuote(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"/a\nExecStartPre=/bin/sh", "/a\rb", "/a\x00b", "/a\tb"} {
		if got, err := systemdQuote(in); err == nil {
			t.Errorf("systemdQuote(%q) = %q, want a refusal", in, got)
		}
	}
	dir := t.TempDir()
	if err := writeUnit(filepath.Join(dir, "u.service"), "/bin/agent\nExecStartPre=/bin/sh -c id", "/c.json", "ok"); err == nil {
		t.Fatal("writeUnit accepted a binary path with a newline")
	}
	if _, err := os.Stat(filepath.Join(dir, "u.service")); err == nil {
		t.Fatal("a refused unit was written")
	}
}

// FuzzSystemdQuote: a quoted value is one line, one quoted word, with no
// lone specifier or variable; anything else is refused.
func FuzzSystemdQuote(f *testing.F) {
	for _, s := range []string{"/opt/agent com/agentcom", "a\nExecStartPre=x", `"%h$X\`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := systemdQuote(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(q, "\n\r\x00") || len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
			t.Fatalf("systemdQuote(%q) = %q", s, q)
		}
		body := q[1 : len(q)-1]
		for i := 0; i < len(body); i++ {
			switch body[i] {
			case '\\':
				i++ // an escape takes the next byte
			case '"':
				t.Fatalf("unescaped quote in %q", q)
			case '%', '$':
				if i+1 >= len(body) || body[i+1] != body[i] {
					t.Fatalf("lone %c in %q", body[i], q)
				}
				i++
			}
		}
	})
}
