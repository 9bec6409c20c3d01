package pgdriver

import "github.com/agentcom/agentcom/internal/storage"

// PushSubscriptions implements storage.Driver.
func (d *Driver) PushSubscriptions() storage.PushSubscriptionStore { return pushStore{d} }

type pushStore struct{ d *Driver }
