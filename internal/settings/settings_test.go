package settings_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/settings"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/testenv"
)

// FuzzSettingValue: every integer setting refuses exactly the values
// outside its bounds and changes nothing then; whatever is stored
// (including values an older version wrote unchecked) reads back inside
// the bounds, and the derived duration never overflows.
func FuzzSettingValue(f *testing.F) {
	for _, v := range []int64{math.MaxInt64, math.MinInt64, 0, -1, 1, 1e13, 999, 1_000, 365 * 86_400_000, 365*86_400_000 + 1} {
		f.Add(v, true)
		f.Add(v, false)
	}
	d, db, err := boltdriver.OpenDir(f.TempDir(), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = db.Close() })
	s, err := settings.New(d.Settings())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v int64, mailbox bool) {
		key := settings.KeyHeartbeatInterval
		if mailbox {
			key = settings.KeyMailboxTTL
		}
		r, _ := settings.Bounds(key)
		before := s.Int(key, -1)
		err := s.PutInt(key, v)
		inside := v >= r.Min && v <= r.Max
		switch {
		case inside && err != nil:
			t.Fatalf("%s=%d refused: %v", key, v, err)
		case !inside && !errors.Is(err, settings.ErrOutOfRange):
			t.Fatalf("%s=%d accepted (err %v)", key, v, err)
		case !inside && s.Int(key, -1) != before:
			t.Fatalf("refused %s=%d changed the value", key, v)
		}
		// A raw store of anything reads back within the bounds.
		if err := s.Put(key, v); err != nil {
			t.Fatal(err)
		}
		if got := s.Int(key, 0); got < r.Min || got > r.Max {
			t.Fatalf("stored %d reads as %d, outside [%d, %d]", v, got, r.Min, r.Max)
		}
		if ttl := s.MailboxTTL(); ttl <= 0 || ttl > 366*24*time.Hour {
			t.Fatalf("mailbox TTL %v after storing %d", ttl, v)
		}
	})
}

// TestPostgres: settings written by one hub are read by another sharing
// the database, and bounds hold there as on bolt.
func TestPostgres(t *testing.T) {
	d, err := pgdriver.Open(t.Context(), testenv.Postgres(t), pgdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, err := settings.New(d.Settings())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PutInt(settings.KeyMailboxTTL, 3_600_000); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(settings.KeyDefaultRepo, "git@example.com:r.git"); err != nil {
		t.Fatal(err)
	}
	if err := a.PutInt(settings.KeyHeartbeatInterval, 1); !errors.Is(err, settings.ErrOutOfRange) {
		t.Fatalf("out of range: %v", err)
	}
	b, err := settings.New(d.Settings())
	if err != nil {
		t.Fatal(err)
	}
	if b.MailboxTTL() != time.Hour || b.HeartbeatIntervalMs() != settings.DefaultHeartbeatIntervalMs {
		t.Fatalf("other hub reads %v, %d", b.MailboxTTL(), b.HeartbeatIntervalMs())
	}
	if r, ok := b.DefaultRepo(); !ok || r != "git@example.com:r.git" {
		t.Fatalf("repo %q %v", r, ok)
	}
	// A change made by the other hub shows after a reload.
	if err := b.PutInt(settings.KeyMailboxTTL, 7_200_000); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if a.MailboxTTL() != 2*time.Hour {
		t.Fatalf("after reload %v", a.MailboxTTL())
	}
}
