package boltdriver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

// Series implements storage.Driver.
func (d *Driver) Series() storage.SeriesStore { return seriesStore{d} }

// seriesStore keeps the chart history in store.DashboardSeries: the key is
// the minute as 8 big-endian bytes (so keys sort by time), the value the
// point's JSON.
type seriesStore struct{ d *Driver }

func (s seriesStore) table() *store.Table { return s.d.table(store.DashboardSeries) }

func seriesKey(minute int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(minute)) }

func (s seriesStore) Put(ctx context.Context, rows []storage.SeriesRow) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storage.CheckSeriesRows(rows); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	err := s.table().Update(func(tx *store.Tx) error {
		for _, r := range rows {
			if err := tx.Put(seriesKey(r.Minute), r.Body); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store chart history: %w", err)
	}
	return nil
}

var errStopScan = errors.New("stop scan")

func (s seriesStore) Range(ctx context.Context, from, to int64) ([]storage.SeriesRow, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	from = max(from, 0)
	var rows []storage.SeriesRow
	if to <= from {
		return rows, nil
	}
	err := s.table().View(func(tx *store.Tx) error {
		return tx.ScanFrom(seriesKey(from), func(k, v []byte) error {
			if len(k) != 8 {
				return nil // not a minute: skipped, and removed by Trim
			}
			m := int64(binary.BigEndian.Uint64(k))
			if m >= to || m < 0 {
				return errStopScan
			}
			rows = append(rows, storage.SeriesRow{Minute: m, Body: slices.Clone(v)})
			return nil
		})
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, fmt.Errorf("read chart history: %w", err)
	}
	return rows, nil
}

func (s seriesStore) Trim(ctx context.Context, before int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := s.table().Update(func(tx *store.Tx) error {
		n = 0 // fn may run more than once
		var stale [][]byte
		// Every key is looked at (a week of minutes at most): keys that
		// are not a minute are junk and go too, wherever they sort.
		if err := tx.ForEach(func(k, _ []byte) error {
			if len(k) != 8 || int64(binary.BigEndian.Uint64(k)) < before {
				stale = append(stale, slices.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range stale {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		n = len(stale)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("trim chart history: %w", err)
	}
	return n, nil
}
