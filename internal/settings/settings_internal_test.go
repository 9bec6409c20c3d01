package settings

import (
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
)

func TestDefaultsPutReloadAndBadValues(t *testing.T) {
	dir := t.TempDir()
	d, db, err := boltdriver.OpenDir(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := New(d.Settings())
	if err != nil {
		t.Fatal(err)
	}
	// README: heartbeat 15 min, mailbox retention 7 days, no default repo.
	if s.HeartbeatIntervalMs() != 15*60*1000 || s.MailboxTTL() != 7*24*time.Hour {
		t.Fatalf("defaults %d %v", s.HeartbeatIntervalMs(), s.MailboxTTL())
	}
	if _, ok := s.DefaultRepo(); ok {
		t.Fatal("a default repo out of nothing")
	}
	if err := s.Put(KeyMailboxTTL, 3600_000); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(KeyDefaultRepo, "git@example.com:r.git"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("bad", func() {}); err == nil {
		t.Fatal("an unencodable value was accepted")
	}
	// A value of the wrong type reads as the default, never as garbage.
	if err := s.Put(KeyHeartbeatInterval, "soon"); err != nil {
		t.Fatal(err)
	}
	if s.HeartbeatIntervalMs() != DefaultHeartbeatIntervalMs {
		t.Fatalf("wrong-typed heartbeat read as %d", s.HeartbeatIntervalMs())
	}

	// Durable: a new store over the same table sees the values.
	s2, err := New(d.Settings())
	if err != nil {
		t.Fatal(err)
	}
	if s2.MailboxTTL() != time.Hour {
		t.Fatalf("after reload %v", s2.MailboxTTL())
	}
	if r, ok := s2.DefaultRepo(); !ok || r != "git@example.com:r.git" {
		t.Fatalf("repo %q %v", r, ok)
	}
	// Reload follows a table changed underneath (a restore).
	if err := db.MustTable(store.Config).Update(func(tx *store.Tx) error { return tx.Delete([]byte(KeyMailboxTTL)) }); err != nil {
		t.Fatal(err)
	}
	if err := s2.Reload(); err != nil {
		t.Fatal(err)
	}
	if s2.MailboxTTL() != 7*24*time.Hour {
		t.Fatalf("after reload of a restored table %v", s2.MailboxTTL())
	}
}
