package webpush

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// EndpointPolicy decides which push endpoints the hub sends to. A push
// subscription makes the hub POST to a URL someone else chose; by default
// only https endpoints on public internet addresses qualify, so a
// subscription cannot point the hub at itself, the machine's other
// services or the local network (server-side request forgery).
type EndpointPolicy struct {
	// AllowPrivate accepts http endpoints and loopback, private and
	// link-local addresses: tests, and push services inside a closed
	// network.
	AllowPrivate bool
}

// resolveTimeout bounds the lookup of an endpoint's host at subscribe time.
const resolveTimeout = 3 * time.Second

// check refuses an endpoint the policy does not allow. Its host is
// resolved: an answer naming any non-public address is refused. A failed
// lookup is not: the dialer checks every connection anyway (DNS answers
// can change after the subscription), and a transient failure must not
// lose a subscription. The error is a *SubscriptionError.
func (p EndpointPolicy) check(ctx context.Context, u *url.URL) error {
	if err := p.checkStatic(u); err != nil || p.AllowPrivate {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if !PublicAddr(a) {
			return &SubscriptionError{Field: "endpoint", Reason: "host resolves to a non-public address"}
		}
	}
	return nil
}

// checkStatic applies the policy to the URL alone: scheme and literal
// addresses.
func (p EndpointPolicy) checkStatic(u *url.URL) error {
	if p.AllowPrivate {
		return nil
	}
	bad := func(reason string) error { return &SubscriptionError{Field: "endpoint", Reason: reason} }
	if !strings.EqualFold(u.Scheme, "https") {
		return bad("must be https")
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return bad("must be a public host")
	}
	if a, err := netip.ParseAddr(host); err == nil && !PublicAddr(a) {
		return bad("must be a public address")
	}
	return nil
}

// dialControl refuses connections to non-public addresses, whatever the
// name resolved to at subscribe time.
func (p EndpointPolicy) dialControl(_, address string, _ syscall.RawConn) error {
	if p.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("push endpoint address %q: %w", address, err)
	}
	if !PublicAddr(ap.Addr()) {
		return fmt.Errorf("push endpoint address %s is not public: refused", ap.Addr())
	}
	return nil
}

// nonPublic are ranges that are neither loopback, private nor link-local
// by the standard library's tests but are still not the public internet.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: may map onto private IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("2002::/16"),       // 6to4: may embed private IPv4
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
}

// PublicAddr reports whether a is an address on the public internet: not
// loopback, private, link-local, multicast, unspecified or reserved.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLoopback() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
