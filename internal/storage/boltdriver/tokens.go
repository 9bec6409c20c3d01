package boltdriver

import "github.com/agentcom/agentcom/internal/storage"

// Tokens implements storage.Driver.
func (d *Driver) Tokens() storage.TokenStore { return tokenStore{d} }

type tokenStore struct{ d *Driver }
