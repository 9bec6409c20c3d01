package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/agentcom/agentcom/internal/cluster"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
)

// ClusterServices are what a hub on PostgreSQL joins its cluster with: a
// bus and the PostgreSQL elector, over a connection pool of their own.
type ClusterServices struct {
	Config *ClusterConfig
	driver *pgdriver.Driver
}

// Close releases the bus and the pool, after the hub's Shutdown (which
// stops the elector).
func (s *ClusterServices) Close() error {
	var errs []error
	if s.Config != nil && s.Config.Bus != nil {
		errs = append(errs, s.Config.Bus.Close())
	}
	if s.driver != nil {
		errs = append(errs, s.driver.Close())
	}
	return errors.Join(errs...)
}

// OpenCluster connects the cluster services of a hub whose store is the
// PostgreSQL database at storeURL (migrated first: the election lives in
// its tables). bus is the parsed --bus (its default is PostgreSQL's
// LISTEN/NOTIFY); hubID and advertise name this hub and where the others
// reach it. Errors never contain the URL's password.
func OpenCluster(ctx context.Context, storeURL string, bus cluster.BusSpec, hubID, advertise string, log *slog.Logger) (*ClusterServices, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cluster.CheckHubID(hubID); err != nil {
		return nil, err
	}
	spec, err := bus.Resolve(true)
	if err != nil {
		return nil, err
	}
	if spec.Kind == cluster.BusLocal {
		return nil, errors.New("--bus local carries nothing between hubs, and hubs on PostgreSQL form a cluster: use --bus postgres (the default) or nats://host:4222")
	}
	d, err := pgdriver.Open(ctx, storeURL, pgdriver.Config{MaxConns: 4})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	s := &ClusterServices{driver: d}
	cfg := &ClusterConfig{HubID: hubID, AdvertiseURL: advertise}
	s.Config = cfg
	busCfg := cluster.BusConfig{Logger: log.With("component", "bus")}
	switch spec.Kind {
	case cluster.BusNATS:
		// Clusters sharing a NATS server keep apart by the id their
		// database holds.
		var ns string
		if ns, err = cluster.ClusterID(ctx, d.Pool()); err == nil {
			cfg.Bus, err = cluster.NewNATSBus(spec.URL, cluster.NATSBusConfig{BusConfig: busCfg, Name: hubID, Namespace: ns})
		}
	default:
		cfg.Bus, err = cluster.NewPGBus(ctx, d.Pool(), cluster.PGBusConfig{BusConfig: busCfg})
	}
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("cluster bus %s: %w", spec, err)
	}
	el, err := cluster.NewPGElector(d.Pool(), cluster.ElectorConfig{HubID: hubID, URL: advertise, Logger: log.With("component", "cluster")})
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("cluster elector: %w", err)
	}
	cfg.Elector = el
	return s, nil
}

// DefaultHubID is a hub id for this process: the host's name (cut to what
// a hub id allows) and a random suffix, so two hubs on one machine differ.
func DefaultHubID() string {
	host, _ := os.Hostname()
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else if r == '.' {
			break // the short host name
		}
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	if b.Len() == 0 {
		b.WriteString("hub")
	}
	return b.String() + "-" + hex.EncodeToString(suffix)
}

// AdvertiseFor derives the URL other hubs reach this one at from its
// listen address, when that names a host; an address on every interface
// (":4000", "0.0.0.0:4000") names none, and the operator must say.
func AdvertiseFor(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "", fmt.Errorf("--addr %s listens on every interface, so other hubs cannot tell where to reach this one: give --advertise http://HOST:PORT (env AGENTCOM_ADVERTISE)", addr)
	}
	if port == "0" {
		return "", fmt.Errorf("--addr %s takes any free port, which other hubs cannot know in advance: give a port, or --advertise http://HOST:PORT (env AGENTCOM_ADVERTISE)", addr)
	}
	return "http://" + net.JoinHostPort(host, port), nil
}
