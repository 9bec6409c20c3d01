package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// TokenRow is one stored bearer token. The plaintext is never stored:
// Hash is TokenHash of it and is the row's key.
type TokenRow struct {
	// Hash is the token's SHA-256, 64 lowercase hex characters.
	Hash    string
	AgentID string
	// Role is the role's name (auth.Role): "agent", "admin" or "viewer".
	Role string
	// Prefix is the plaintext's first characters, for listings.
	Prefix string
	// CreatedAt is Unix milliseconds.
	CreatedAt int64
}

// TokenStore keeps the hub's bearer tokens. Tokens are few (one or two per
// agent), so the auth domain loads them all and serves verification from
// memory; the store is the durable copy every hub sharing it agrees on.
type TokenStore interface {
	// Put stores row, replacing the row with the same hash.
	Put(ctx context.Context, row TokenRow) error
	// Get returns the row with hash, or ErrNotFound.
	Get(ctx context.Context, hash string) (TokenRow, error)
	// RevokeAgent deletes every token of agentID in one commit and returns
	// how many there were.
	RevokeAgent(ctx context.Context, agentID string) (int, error)
	// All returns every row, ordered by hash.
	All(ctx context.Context) ([]TokenRow, error)
}

// TokenHash is the stored form of a plaintext token: its SHA-256 as 64
// lowercase hex characters. Both drivers key tokens by it, so a token
// verifies the same whichever driver issued it.
func TokenHash(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// ValidTokenHash reports whether h has the form TokenHash returns.
func ValidTokenHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ErrInvalidRow is returned for a row a store refuses to keep (a field
// empty, too long or malformed); nothing is written.
var ErrInvalidRow = errors.New("storage: invalid row")

// Bounds of a token row's text fields.
const (
	maxTokenAgent  = 256
	maxTokenRole   = 32
	maxTokenPrefix = 64
)

// CheckTokenRow refuses a row no driver may store.
func CheckTokenRow(r TokenRow) error {
	switch {
	case !ValidTokenHash(r.Hash):
		return fmt.Errorf("%w: token hash is not 64 lowercase hex characters", ErrInvalidRow)
	case r.AgentID == "" || len(r.AgentID) > maxTokenAgent:
		return fmt.Errorf("%w: token agent id empty or longer than %d", ErrInvalidRow, maxTokenAgent)
	case r.Role == "" || len(r.Role) > maxTokenRole:
		return fmt.Errorf("%w: token role empty or longer than %d", ErrInvalidRow, maxTokenRole)
	case len(r.Prefix) > maxTokenPrefix:
		return fmt.Errorf("%w: token prefix longer than %d", ErrInvalidRow, maxTokenPrefix)
	}
	return nil
}
