package cluster

import (
	"fmt"
	"net/url"
	"strings"
)

// BusKind names a bus implementation.
type BusKind string

// The bus kinds --bus accepts.
const (
	// BusDefault is the empty --bus: the PostgreSQL bus when the store is
	// PostgreSQL, the in-process one otherwise (see BusSpec.Resolve).
	BusDefault  BusKind = ""
	BusLocal    BusKind = "local"
	BusPostgres BusKind = "postgres"
	BusNATS     BusKind = "nats"
)

// BusSpec is a parsed --bus value.
type BusSpec struct {
	Kind BusKind
	// URL is the NATS server's URL (nats://host:port), for BusNATS only.
	URL string
}

// String shows the spec for messages and logs, the URL's password
// redacted.
func (s BusSpec) String() string {
	switch s.Kind {
	case BusDefault:
		return "default"
	case BusNATS:
		return redactURL(s.URL)
	}
	return string(s.Kind)
}

// Resolve turns the default into the bus a hub with that store uses:
// PostgreSQL's when the store is PostgreSQL, the in-process bus
// otherwise. A PostgreSQL bus without a PostgreSQL store is refused (the
// bus lives in the store's database).
func (s BusSpec) Resolve(storeIsPostgres bool) (BusSpec, error) {
	switch {
	case s.Kind == BusDefault && storeIsPostgres:
		return BusSpec{Kind: BusPostgres}, nil
	case s.Kind == BusDefault:
		return BusSpec{Kind: BusLocal}, nil
	case s.Kind == BusPostgres && !storeIsPostgres:
		return BusSpec{}, fmt.Errorf("--bus postgres needs a PostgreSQL store (--store postgres://...): the bus runs in the store's database")
	}
	return s, nil
}

// maxBusSpec bounds the --bus value.
const maxBusSpec = 2048

// ParseBus parses a --bus value (env AGENTCOM_BUS): "" (the default:
// PostgreSQL when the store is PostgreSQL, in-process otherwise; see
// Resolve), "local", "postgres" (also "pg"), or a NATS server URL
// nats://[user:password@]host[:port] (tls:// for NATS over TLS; several
// servers of one NATS cluster separated by commas). Errors never contain
// a password.
func ParseBus(spec string) (BusSpec, error) {
	spec = strings.TrimSpace(spec)
	if len(spec) > maxBusSpec {
		return BusSpec{}, fmt.Errorf("--bus: %d bytes is too long", len(spec))
	}
	switch strings.ToLower(spec) {
	case "":
		return BusSpec{Kind: BusDefault}, nil
	case "local", "memory", "inprocess", "in-process":
		return BusSpec{Kind: BusLocal}, nil
	case "postgres", "postgresql", "pg":
		return BusSpec{Kind: BusPostgres}, nil
	}
	servers := strings.Split(spec, ",")
	for _, raw := range servers {
		if err := checkNATSURL(strings.TrimSpace(raw)); err != nil {
			return BusSpec{}, err
		}
	}
	return BusSpec{Kind: BusNATS, URL: spec}, nil
}

func checkNATSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if strings.HasPrefix(strings.ToLower(raw), "postgres") {
			return fmt.Errorf("--bus: a PostgreSQL URL is not a bus; the PostgreSQL bus is --bus postgres and uses the --store database")
		}
		return fmt.Errorf("--bus %s: want local, postgres or nats://host:port", redactURL(raw))
	}
	switch strings.ToLower(u.Scheme) {
	case "nats", "tls":
	case "postgres", "postgresql":
		return fmt.Errorf("--bus: a PostgreSQL URL is not a bus; the PostgreSQL bus is --bus postgres and uses the --store database")
	default:
		return fmt.Errorf("--bus %s: unknown scheme %q; want local, postgres or nats://host:port", redactURL(raw), u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("--bus %s: no host; want nats://host:port", redactURL(raw))
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != p {
			return fmt.Errorf("--bus %s: bad port %q", redactURL(raw), p)
		}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--bus %s: a NATS URL has no path or query; want nats://host:port", redactURL(raw))
	}
	return nil
}

// redactURL returns a URL (or a comma-separated list of them) with any
// password or token replaced, for messages and logs. What does not parse
// is reduced to its scheme.
func redactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = redactOne(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactOne(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if scheme, _, ok := strings.Cut(raw, "://"); ok && len(scheme) < 16 {
			return scheme + "://(unparsable URL)"
		}
		return "(unparsable URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else if u.User.Username() != "" {
			// nats://TOKEN@host: a lone user name is NATS's token form.
			u.User = url.User("xxxxx")
		}
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "pass") || strings.Contains(strings.ToLower(k), "token") {
			q.Set(k, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}
