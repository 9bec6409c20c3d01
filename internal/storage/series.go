package storage

import (
	"context"
	"encoding/json"
	"fmt"
)

// SeriesRow is one minute of the dashboard's chart history: the minute
// (Unix time / 60 s) and the point as JSON.
type SeriesRow struct {
	Minute int64
	Body   []byte
}

// MaxSeriesBody bounds one stored minute.
const MaxSeriesBody = 16 << 10

// SeriesStore keeps the dashboard's chart history, one row per minute.
type SeriesStore interface {
	// Put stores rows (Minute >= 0, Body valid JSON), replacing the rows
	// of the same minutes, in one commit.
	Put(ctx context.Context, rows []SeriesRow) error
	// Range returns the rows of minutes in [from, to), oldest first.
	Range(ctx context.Context, from, to int64) ([]SeriesRow, error)
	// Trim deletes every row before minute before and returns how many.
	Trim(ctx context.Context, before int64) (int, error)
}

// MaxSeriesPut bounds the rows of one Put (a week of minutes).
const MaxSeriesPut = 7 * 24 * 60

// CheckSeriesRows refuses rows no driver may store.
func CheckSeriesRows(rows []SeriesRow) error {
	if len(rows) > MaxSeriesPut {
		return fmt.Errorf("%w: %d series rows in one write, at most %d", ErrInvalidRow, len(rows), MaxSeriesPut)
	}
	for _, r := range rows {
		switch {
		case r.Minute < 0:
			return fmt.Errorf("%w: series minute %d is negative", ErrInvalidRow, r.Minute)
		case len(r.Body) > MaxSeriesBody:
			return fmt.Errorf("%w: series minute %d longer than %d bytes", ErrInvalidRow, r.Minute, MaxSeriesBody)
		case !json.Valid(r.Body):
			return fmt.Errorf("%w: series minute %d is not valid JSON", ErrInvalidRow, r.Minute)
		}
	}
	return nil
}
