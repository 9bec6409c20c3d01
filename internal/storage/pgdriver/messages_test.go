package pgdriver_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/pgdriver"
	"github.com/agentcom/agentcom/internal/testenv"
)

// The history trims to its cap and the trimmed entries leave the thread
// index. The table is filled by one statement (appending HistoryCap
// messages one by one would take long).
func TestHistoryCap(t *testing.T) {
	ctx := context.Background()
	d, err := pgdriver.Open(ctx, testenv.Postgres(t), pgdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, q := range []string{
		`INSERT INTO agentcom_message_history (seq, id, from_agent, to_agent, channel, ts, stored_at, body)
		SELECT n, 'g' || n, 'a', 'b', '', 1, 1, convert_to(format('{"id":"g%s"}', n), 'UTF8')
		FROM generate_series(1, $1::bigint) AS n`,
		`INSERT INTO agentcom_thread_messages (id, parent, body) SELECT 'g' || n, '', '\x7b7d' FROM generate_series(1, $1::bigint) AS n`,
		`INSERT INTO agentcom_message_counters (name, value) VALUES ('history', $1)`,
	} {
		if _, err := d.Pool().Exec(ctx, q, storage.HistoryCap); err != nil {
			t.Fatal(err)
		}
	}
	ms := d.Messages()
	var trimmed []string
	for i := range 2 {
		id := fmt.Sprintf("new%d", i)
		res, err := ms.AppendMessage(ctx, storage.Append{StoredAt: 1,
			Message: storage.MessageRow{ID: id, From: "a", To: "b", Body: fmt.Appendf(nil, `{"id":%q}`, id)}})
		if err != nil || res.Seq != storage.HistoryCap+1+uint64(i) {
			t.Fatalf("append: %+v %v", res, err)
		}
		trimmed = append(trimmed, res.Trimmed...)
	}
	if !slices.Equal(trimmed, []string{"g1", "g2"}) {
		t.Fatalf("trimmed %v", trimmed)
	}
	if n, _ := ms.CountHistory(ctx); n != storage.HistoryCap {
		t.Fatalf("history holds %d", n)
	}
	if _, err := ms.ThreadMessage(ctx, "g2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("trimmed g2 still indexed: %v", err)
	}
	if _, err := ms.ThreadMessage(ctx, "g3"); err != nil {
		t.Fatalf("kept g3: %v", err)
	}
}
