package tasks

import "github.com/agentcom/agentcom/internal/timeid"

// idPrefix starts every task id; 16 lowercase hex digits follow, a
// timeid: task ids sort by the time they were made, which keeps a group
// commit of new tasks on the few pages at the right edge of the stores'
// B-trees.
const idPrefix = "task-"

// newID returns a fresh task id from g, made at now (Unix milliseconds).
func newID(g *timeid.Gen, now int64) string { return timeid.Format(idPrefix, g.Next(now)) }

// followed is what the queue's generator must stay above once id, a task
// id read from the store, exists (timeid.Followed).
func followed(id string, now int64) uint64 { return timeid.Followed(idPrefix, id, now) }
