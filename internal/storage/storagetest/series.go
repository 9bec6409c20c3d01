package storagetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
)

func seriesRow(minute int64, completed int) storage.SeriesRow {
	return storage.SeriesRow{Minute: minute, Body: fmt.Appendf(nil, `{"t":%d,"completed":%d}`, minute*60000, completed)}
}

func runSeries(t *testing.T, open Opener) {
	// The canceled-context test of all four small stores lives here, the
	// last of them the suite runs.
	t.Run("SmallStoresCanceledContext", func(t *testing.T) { runSmallCanceled(t, open) })
	t.Run("PutRangeTrim", func(t *testing.T) {
		s := open(t).Series()
		ctx := t.Context()
		const now = 29_400_000 // a minute of 2025
		var rows []storage.SeriesRow
		for m := int64(now - 10); m <= now; m++ {
			rows = append(rows, seriesRow(m, int(m-now+10)))
		}
		if err := s.Put(ctx, rows); err != nil {
			t.Fatal(err)
		}
		// Replaces; a minute given twice in one Put keeps its last body.
		if err := s.Put(ctx, []storage.SeriesRow{seriesRow(now, 98), seriesRow(now, 99)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.Range(ctx, now-3, now+1)
		if err != nil {
			t.Fatal(err)
		}
		want := []storage.SeriesRow{seriesRow(now-3, 7), seriesRow(now-2, 8), seriesRow(now-1, 9), seriesRow(now, 99)}
		if len(got) != len(want) {
			t.Fatalf("Range = %+v", got)
		}
		for i := range want {
			if got[i].Minute != want[i].Minute || !sameJSON(t, got[i].Body, want[i].Body) {
				t.Fatalf("Range[%d] = %d %s, want %d %s", i, got[i].Minute, got[i].Body, want[i].Minute, want[i].Body)
			}
		}
		if got, _ := s.Range(ctx, now+1, now+100); len(got) != 0 {
			t.Fatalf("Range of the future = %+v", got)
		}
		if got, _ := s.Range(ctx, now, now-5); len(got) != 0 {
			t.Fatalf("inverted Range = %+v", got)
		}
		if n, err := s.Trim(ctx, now-2); err != nil || n != 8 {
			t.Fatalf("Trim = %d, %v; want 8", n, err)
		}
		if got, _ := s.Range(ctx, 0, now+1); len(got) != 3 || got[0].Minute != now-2 {
			t.Fatalf("after Trim: %+v", got)
		}
		if n, err := s.Trim(ctx, now-2); err != nil || n != 0 {
			t.Fatalf("second Trim = %d, %v", n, err)
		}
	})

	t.Run("InvalidRefused", func(t *testing.T) {
		s := open(t).Series()
		ctx := t.Context()
		for name, rows := range map[string][]storage.SeriesRow{
			"negative minute": {{Minute: -1, Body: []byte("{}")}},
			"not JSON":        {seriesRow(5, 1), {Minute: 6, Body: []byte("{")}},
			"too many rows":   make([]storage.SeriesRow, storage.MaxSeriesPut+1),
		} {
			if err := s.Put(ctx, rows); !errors.Is(err, storage.ErrInvalidRow) {
				t.Errorf("%s: Put = %v, want ErrInvalidRow", name, err)
			}
		}
		// A refused batch writes none of its rows.
		if got, _ := s.Range(ctx, 0, 100); len(got) != 0 {
			t.Fatalf("refused rows stored: %+v", got)
		}
	})
}
