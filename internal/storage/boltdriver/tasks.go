package boltdriver

import "github.com/agentcom/agentcom/internal/storage"

// Tasks implements storage.Driver.
func (d *Driver) Tasks() storage.TaskStore { return taskStore{d} }

type taskStore struct{ d *Driver }
