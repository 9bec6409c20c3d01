package boltdriver

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/store"
)

// Tokens implements storage.Driver.
func (d *Driver) Tokens() storage.TokenStore { return tokenStore{d} }

// tokenStore keeps tokens in store.Tokens as they always were: the key is
// the hash, the value this JSON record.
type tokenStore struct{ d *Driver }

type tokenRecord struct {
	AgentID   string `json:"agent_id"`
	Role      string `json:"role"`
	Prefix    string `json:"prefix"`
	CreatedAt int64  `json:"created_at"`
}

func (s tokenStore) table() *store.Table { return s.d.table(store.Tokens) }

func (s tokenStore) Put(ctx context.Context, r storage.TokenRow) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storage.CheckTokenRow(r); err != nil {
		return err
	}
	v, err := json.Marshal(tokenRecord{AgentID: r.AgentID, Role: r.Role, Prefix: r.Prefix, CreatedAt: r.CreatedAt})
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	if err := s.table().Update(func(tx *store.Tx) error { return tx.Put([]byte(r.Hash), v) }); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

func (s tokenStore) Get(ctx context.Context, hash string) (storage.TokenRow, error) {
	if err := ctx.Err(); err != nil {
		return storage.TokenRow{}, err
	}
	var row storage.TokenRow
	found := false
	err := s.table().View(func(tx *store.Tx) error {
		v := tx.Get([]byte(hash))
		if v == nil {
			return nil
		}
		found = true
		var err error
		row, err = decodeToken([]byte(hash), v)
		return err
	})
	if err != nil {
		return storage.TokenRow{}, fmt.Errorf("read token: %w", err)
	}
	if !found {
		return storage.TokenRow{}, storage.ErrNotFound
	}
	return row, nil
}

func (s tokenStore) RevokeAgent(ctx context.Context, agentID string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int
	err := s.table().Update(func(tx *store.Tx) error {
		n = 0 // fn may run more than once
		var hashes [][]byte
		if err := tx.ForEach(func(k, v []byte) error {
			r, err := decodeToken(k, v)
			if err != nil {
				return err
			}
			if r.AgentID == agentID {
				hashes = append(hashes, []byte(r.Hash))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, h := range hashes {
			if err := tx.Delete(h); err != nil {
				return err
			}
		}
		n = len(hashes)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("revoke tokens of %s: %w", agentID, err)
	}
	return n, nil
}

func (s tokenStore) All(ctx context.Context) ([]storage.TokenRow, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rows []storage.TokenRow
	err := s.table().View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			r, err := decodeToken(k, v)
			if err != nil {
				return err
			}
			rows = append(rows, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load tokens: %w", err)
	}
	return rows, nil
}

func decodeToken(k, v []byte) (storage.TokenRow, error) {
	var rec tokenRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return storage.TokenRow{}, fmt.Errorf("token record %.8s: %w", k, err)
	}
	return storage.TokenRow{Hash: string(k), AgentID: rec.AgentID, Role: rec.Role, Prefix: rec.Prefix, CreatedAt: rec.CreatedAt}, nil
}
