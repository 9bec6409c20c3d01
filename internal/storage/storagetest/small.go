package storagetest

import (
	"context"
	"errors"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
)

// runSmallCanceled: every write of the small stores (tokens, settings,
// push subscriptions, series) under an ended context fails with the
// context's error and writes nothing.
func runSmallCanceled(t *testing.T, open Opener) {
	d := open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	writes := map[string]func() error{
		"token put":   func() error { return d.Tokens().Put(ctx, tokenRow("secret-c", "c", "agent", 1)) },
		"setting put": func() error { return d.Settings().Put(ctx, "k", []byte("1")) },
		"push put": func() error {
			_, err := d.PushSubscriptions().Put(ctx, pushRow("https://push.example/c", "k"), 10)
			return err
		},
		"series put":   func() error { return d.Series().Put(ctx, []storage.SeriesRow{seriesRow(1, 1)}) },
		"token revoke": func() error { _, err := d.Tokens().RevokeAgent(ctx, "c"); return err },
		"series trim":  func() error { _, err := d.Series().Trim(ctx, 10); return err },
	}
	for name, w := range writes {
		if err := w(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s under a canceled context: %v, want context.Canceled", name, err)
		}
	}
	live := t.Context()
	toks, _ := d.Tokens().All(live)
	sets, _ := d.Settings().All(live)
	n, _ := d.PushSubscriptions().Count(live)
	rows, _ := d.Series().Range(live, 0, 100)
	if len(toks)+len(sets)+n+len(rows) != 0 {
		t.Fatalf("written under a canceled context: %d tokens, %d settings, %d subscriptions, %d minutes", len(toks), len(sets), n, len(rows))
	}
}
