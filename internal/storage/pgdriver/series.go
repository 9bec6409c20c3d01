package pgdriver

import "github.com/agentcom/agentcom/internal/storage"

// Series implements storage.Driver.
func (d *Driver) Series() storage.SeriesStore { return seriesStore{d} }

type seriesStore struct{ d *Driver }
