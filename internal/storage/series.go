package storage

// SeriesStore is the series domain's storage. Filled in by the series slice of the driver
// redesign.
type SeriesStore interface{}
