package storage

// TokenStore is the tokens domain's storage. Filled in by the tokens slice of the driver
// redesign.
type TokenStore interface{}
