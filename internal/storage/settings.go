package storage

// SettingsStore is the settings domain's storage. Filled in by the settings slice of the driver
// redesign.
type SettingsStore interface{}
