package boltdriver_test

import (
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
)

// TestSmallStoresReadExistingDataDirs: records written in the formats the
// hub used before the driver boundary (raw table writes, as an existing
// data directory holds them) read back through the stores, and what the
// stores write is in those same formats.
func TestSmallStoresReadExistingDataDirs(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.AllTables(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hash := storage.TokenHash("an-old-token")
	minute := int64(29_400_000)
	minuteKey := binary.BigEndian.AppendUint64(nil, uint64(minute))
	put := func(table string, k, v []byte) {
		t.Helper()
		if err := db.MustTable(table).Update(func(tx *store.Tx) error { return tx.Put(k, v) }); err != nil {
			t.Fatal(err)
		}
	}
	put(store.Tokens, []byte(hash), []byte(`{"agent_id":"old","role":"admin","prefix":"an-old-t","created_at":1700000000000}`))
	put(store.Config, []byte("mailbox_ttl_ms"), []byte(`3600000`))
	put(store.PushSubscriptions, []byte("https://push.example/a"), []byte(`{"endpoint":"https://push.example/a","keys":{"p256dh":"k","auth":"a"}}`))
	put(store.DashboardSeries, minuteKey, []byte(`{"t":1764000000000,"completed":3}`))

	d, err := boltdriver.New(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tok, err := d.Tokens().Get(ctx, hash)
	if want := (storage.TokenRow{Hash: hash, AgentID: "old", Role: "admin", Prefix: "an-old-t", CreatedAt: 1700000000000}); err != nil || tok != want {
		t.Fatalf("old token: %+v, %v", tok, err)
	}
	if m, err := d.Settings().All(ctx); err != nil || string(m["mailbox_ttl_ms"]) != "3600000" {
		t.Fatalf("old settings: %q, %v", m, err)
	}
	if subs, err := d.PushSubscriptions().List(ctx); err != nil || len(subs) != 1 || subs[0].Endpoint != "https://push.example/a" {
		t.Fatalf("old subscriptions: %q, %v", subs, err)
	}
	if rows, err := d.Series().Range(ctx, minute, minute+1); err != nil || len(rows) != 1 || string(rows[0].Body) != `{"t":1764000000000,"completed":3}` {
		t.Fatalf("old series: %+v, %v", rows, err)
	}

	// Written through the stores: the same key and value formats.
	newHash := storage.TokenHash("a-new-token")
	if err := d.Tokens().Put(ctx, storage.TokenRow{Hash: newHash, AgentID: "new", Role: "agent", Prefix: "a-new-to", CreatedAt: 5}); err != nil {
		t.Fatal(err)
	}
	if err := d.Series().Put(ctx, []storage.SeriesRow{{Minute: minute + 1, Body: []byte(`{"t":1764000060000}`)}}); err != nil {
		t.Fatal(err)
	}
	err = db.MustTable(store.Tokens).View(func(tx *store.Tx) error {
		var rec map[string]any
		if err := json.Unmarshal(tx.Get([]byte(newHash)), &rec); err != nil {
			return err
		}
		if rec["agent_id"] != "new" || rec["role"] != "agent" || rec["prefix"] != "a-new-to" || rec["created_at"] != 5.0 {
			t.Errorf("token record %v", rec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.MustTable(store.DashboardSeries).View(func(tx *store.Tx) error {
		if v := tx.Get(binary.BigEndian.AppendUint64(nil, uint64(minute+1))); string(v) != `{"t":1764000060000}` {
			t.Errorf("series record %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Junk in the series table (a key that is no minute) is skipped by
	// Range and removed by Trim.
	put(store.DashboardSeries, []byte("junk"), []byte(`{}`))
	if rows, _ := d.Series().Range(ctx, 0, 1<<62); len(rows) != 2 {
		t.Fatalf("Range with junk: %+v", rows)
	}
	if n, err := d.Series().Trim(ctx, minute+1); err != nil || n != 2 {
		t.Fatalf("Trim with junk = %d, %v; want 2 (the junk and one minute)", n, err)
	}
}
