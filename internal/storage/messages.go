package storage

// MessageStore is the messages domain's storage. Filled in by the messages slice of the driver
// redesign.
type MessageStore interface{}
