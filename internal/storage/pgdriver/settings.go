package pgdriver

import "github.com/agentcom/agentcom/internal/storage"

// Settings implements storage.Driver.
func (d *Driver) Settings() storage.SettingsStore { return settingsStore{d} }

type settingsStore struct{ d *Driver }
