package boltdriver

import "github.com/agentcom/agentcom/internal/storage"

// Messages implements storage.Driver.
func (d *Driver) Messages() storage.MessageStore { return messageStore{d} }

type messageStore struct{ d *Driver }
