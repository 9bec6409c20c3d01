package cluster_test

import (
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/cluster"
)

func TestParseBus(t *testing.T) {
	for _, c := range []struct {
		in   string
		kind cluster.BusKind
		url  string
	}{
		{"", cluster.BusDefault, ""},
		{"  ", cluster.BusDefault, ""},
		{"local", cluster.BusLocal, ""},
		{"postgres", cluster.BusPostgres, ""},
		{"PG", cluster.BusPostgres, ""},
		{"nats://127.0.0.1:4222", cluster.BusNATS, "nats://127.0.0.1:4222"},
		{"nats://u:secret@nats.example", cluster.BusNATS, "nats://u:secret@nats.example"},
		{"nats://a:4222,nats://b:4222", cluster.BusNATS, "nats://a:4222,nats://b:4222"},
		{"tls://nats.example:4222", cluster.BusNATS, "tls://nats.example:4222"},
	} {
		got, err := cluster.ParseBus(c.in)
		if err != nil || got.Kind != c.kind || got.URL != c.url {
			t.Errorf("ParseBus(%q) = %+v, %v; want %s %s", c.in, got, err, c.kind, c.url)
		}
		if strings.Contains(got.String(), "secret") {
			t.Errorf("%+v shows its password: %s", got, got)
		}
	}
	for _, in := range []string{
		"redis://h:1", "nats://", "nats://h:99999", "nats://h:4222/x", "nats://h:4222?a=b",
		"postgres://u:secret@h/db", "nats://u:secret@h:bad", "nats://u:secret@:4222",
		"bogus", strings.Repeat("x", 5000),
	} {
		got, err := cluster.ParseBus(in)
		if err == nil {
			t.Errorf("ParseBus(%.40q) = %+v, want an error", in, got)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseBus error shows the password: %v", err)
		}
	}
}

func TestBusSpecString(t *testing.T) {
	for in, want := range map[string]string{
		"nats://u:secret@h:4222":          "nats://u:xxxxx@h:4222",
		"nats://secrettoken@h:4222":       "nats://xxxxx@h:4222",
		"nats://a:4222,nats://u:secret@b": "nats://a:4222,nats://u:xxxxx@b",
		"postgres":                        "postgres",
		"":                                "default",
	} {
		s, err := cluster.ParseBus(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.String(); got != want {
			t.Errorf("%q shows as %q, want %q", in, got, want)
		}
	}
}

func TestBusSpecResolve(t *testing.T) {
	def, _ := cluster.ParseBus("")
	if s, err := def.Resolve(true); err != nil || s.Kind != cluster.BusPostgres {
		t.Errorf("default with a PostgreSQL store: %+v, %v", s, err)
	}
	if s, err := def.Resolve(false); err != nil || s.Kind != cluster.BusLocal {
		t.Errorf("default with bolt: %+v, %v", s, err)
	}
	pg, _ := cluster.ParseBus("postgres")
	if _, err := pg.Resolve(false); err == nil {
		t.Error("postgres bus without a PostgreSQL store accepted")
	}
	n, _ := cluster.ParseBus("nats://h:4222")
	if s, err := n.Resolve(false); err != nil || s != n {
		t.Errorf("nats with bolt: %+v, %v", s, err)
	}
}
