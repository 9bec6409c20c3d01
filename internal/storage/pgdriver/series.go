package pgdriver

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agentcom/agentcom/internal/storage"
)

// Series implements storage.Driver.
func (d *Driver) Series() storage.SeriesStore { return seriesStore{d} }

type seriesStore struct{ d *Driver }

func (s seriesStore) Put(ctx context.Context, rows []storage.SeriesRow) error {
	if err := storage.CheckSeriesRows(rows); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	minutes := make([]int64, len(rows))
	bodies := make([]string, len(rows))
	for i, r := range rows {
		minutes[i], bodies[i] = r.Minute, string(r.Body)
	}
	// One statement, so one commit; a minute given twice keeps its last
	// body, as successive puts would.
	_, err := s.d.pool.Exec(ctx, `INSERT INTO agentcom_series (minute, body)
		SELECT DISTINCT ON (m) m, b::jsonb FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS u(m, b, i)
		ORDER BY m, i DESC
		ON CONFLICT (minute) DO UPDATE SET body = EXCLUDED.body`, minutes, bodies)
	if err != nil {
		return fmt.Errorf("store chart history: %w", err)
	}
	return nil
}

func (s seriesStore) Range(ctx context.Context, from, to int64) ([]storage.SeriesRow, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT minute, body::text FROM agentcom_series
		WHERE minute >= $1 AND minute < $2 ORDER BY minute`, from, to)
	if err != nil {
		return nil, fmt.Errorf("read chart history: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.SeriesRow, error) {
		var r storage.SeriesRow
		var body string
		err := row.Scan(&r.Minute, &body)
		r.Body = []byte(body)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("read chart history: %w", err)
	}
	return out, nil
}

func (s seriesStore) Trim(ctx context.Context, before int64) (int, error) {
	tag, err := s.d.pool.Exec(ctx, `DELETE FROM agentcom_series WHERE minute < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("trim chart history: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
