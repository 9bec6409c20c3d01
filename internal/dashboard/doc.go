// Package dashboard is the operator's command center: the aggregator that
// turns the hub's bus events into a live picture, the /ws/dashboard socket
// that streams it to browsers, the web page itself (embedded in the
// binary, no CDN), and the web push notifier.
//
// # Cost model
//
// One Aggregator goroutine consumes the bus and keeps bounded state
// (recent completions and failures, per-agent timelines, and the chart
// history: one point per minute for seven days, with at most 512 wait
// and run samples per minute). The chart history is written to the
// dashboard_series table every Config.HistoryPersist and at shutdown,
// and read back at start; the recent lists are seeded from the task
// tables at start, so a restart keeps both. Snapshots are built by one
// builder at most every Config.SnapshotInterval and the encoded bytes are
// shared by every socket and HTTP caller that asked meanwhile; a snapshot
// handed to a caller was always started after the caller asked, so it is
// never stale with respect to the request. Events are batched every
// Config.FlushInterval (100 ms) into one encoded frame that every socket
// receives as the same byte slice. A socket whose send queue is full is
// closed (4005) rather than allowed to hold memory or block the others.
//
// # The /ws/dashboard protocol
//
// Server to client:
//
//	{"type":"hello","role":"admin"|"viewer","can_act":bool,"server_time":ms}
//	    first frame of every connection (new; older pages ignore it)
//	{"type":"snapshot","data":<Snapshot>}
//	    right after hello, and in answer to request_snapshot
//	{"type":"events","data":[<event>, ...]}
//	    every 100 ms when something happened, oldest first
//	{"type":"retry_result","task_id":id,"status":"requeued"|"not_found"|"error"[,"error":text]}
//	{"type":"cancel_result","task_id":id,"status":"cancelled"|"not_found"|"not_cancellable"|"error",
//	    "was_assigned_to":agent|null[,"error":text]}
//	{"type":"backup_result","status":"ok"|"error","result":<storage result>[,"error":text]}
//	{"type":"compact_result","table":name|null,"force":bool,"status":"ok"|"error","result":...[,"error":text]}
//	{"type":"restore_result","table":name,"backup":file|null,"dry_run":bool,"status":"ok"|"error","result":...[,"error":text]}
//	{"type":"agent_timeline","agent_id":id,"entries":[{"timestamp","kind","event","detail"...}]}
//	{"type":"pong","timestamp":ms}
//	{"type":"error","error":code,"request":frame type,"detail":text[,"errors":[field errors]]}
//	    codes: invalid_json, validation_failed, forbidden (a viewer's action),
//	    storage_unavailable, busy (a storage action of this socket is running)
//
// Every result and error frame echoes the request's optional "ref" string.
//
// Client to server:
//
//	{"type":"request_snapshot"}
//	{"type":"retry_task","task_id":id}                      admin
//	{"type":"cancel_task","task_id":id[,"reason":text]}     admin
//	{"type":"backup_now"}                                   admin
//	{"type":"compact"[,"table":name][,"force":bool]}        admin; no table: all tables
//	{"type":"restore","table":name[,"backup":file],"dry_run":bool}   admin
//	{"type":"agent_timeline","agent_id":id}
//	{"type":"ping"}
//
// The server also pings at the WebSocket level every Config.PingInterval
// and closes a socket that does not answer; the page sends its own ping
// frames to notice a dead connection from its side and reconnects with
// backoff (1 s doubling to 30 s, plus up to 30 % jitter).
//
// # Access
//
// On a hub that listens only on loopback a caller without a token is the
// local operator and may act, provided the request is addressed to a name
// the hub serves and, from a browser, comes from a page the hub served
// (api.Hosts and the same-origin check; DNS rebinding and other sites'
// pages get neither). Otherwise the page's data routes and the socket need a
// token (Bearer header or ?token=): a viewer token may watch, an admin
// token may also act; a viewer's action frames get an error frame
// "forbidden" and change nothing.
package dashboard
