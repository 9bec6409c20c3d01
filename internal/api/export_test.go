package api

import "github.com/agentcom/agentcom/internal/protocol"

// BodyAny returns the typed body the Server decoded for r.
func BodyAny(r *Request) protocol.Body { return r.body }
