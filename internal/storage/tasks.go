package storage

// TaskStore is the tasks domain's storage. Filled in by the tasks slice of the driver
// redesign.
type TaskStore interface{}
