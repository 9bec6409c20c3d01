package api

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentcom/agentcom/internal/auth"
)

// Hosts decides which Host headers the hub answers. It is the defence
// against DNS rebinding: a page on attacker.example whose name the
// attacker re-points at 127.0.0.1 reaches a loopback hub with
// "Host: attacker.example". An IP literal cannot be rebound, and
// "localhost" (with its *.localhost subdomains, RFC 6761) always names
// this machine, so those are always served; any other name must be one
// the operator listed.
type Hosts struct {
	enforce bool
	names   map[string]bool
}

// NewHosts builds the policy. A loopback-only hub (where the dashboard
// goes without a token) always checks Host; any hub checks it once the
// operator lists its names in allowed.
func NewHosts(loopbackOnly bool, allowed []string) Hosts {
	h := Hosts{enforce: loopbackOnly || len(allowed) > 0, names: map[string]bool{}}
	for _, n := range allowed {
		if n = normalizeHost(n); n != "" {
			h.names[n] = true
		}
	}
	return h
}

// Allowed reports whether a request addressed to hostport (a Host header)
// may be served.
func (h Hosts) Allowed(hostport string) bool {
	if !h.enforce {
		return true
	}
	host := normalizeHost(hostport)
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	return h.names[host]
}

// normalizeHost lowercases a host name, strips a port, IPv6 brackets and
// a trailing dot.
func normalizeHost(hostport string) string {
	host := strings.ToLower(strings.TrimSpace(hostport))
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	return host
}

// sameOrigin reports whether a browser's Origin header (when it sent one)
// names the host the request was addressed to. Only pages the hub served
// itself pass; every browser sends Origin on cross-site POSTs and
// WebSocket handshakes.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Values("Origin")
	if len(o) == 0 {
		return true
	}
	if len(o) > 1 {
		return false
	}
	u, err := url.Parse(o[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

type callerKey struct{}

// Caller returns the identity the route's access check let in, for raw
// handlers (WebSocket upgrades) that decide what the caller may do.
func Caller(r *http.Request) (auth.Identity, bool) {
	id, ok := r.Context().Value(callerKey{}).(auth.Identity)
	return id, ok
}

func withCaller(r *http.Request, id auth.Identity) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, id))
}
