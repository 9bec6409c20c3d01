package storage

// PushSubscriptionStore is the push domain's storage. Filled in by the push slice of the driver
// redesign.
type PushSubscriptionStore interface{}
