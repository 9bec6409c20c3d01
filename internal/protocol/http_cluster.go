package protocol

// ClusterHealth answers GET /health on a hub of a cluster: the leader's
// Health (fetched from the leader on a follower) with this hub's view of
// the cluster. Fields are in the order the keys sort, as the map it
// replaced encoded them. AgentsConnected is absent when no leader
// answered.
type ClusterHealth struct {
	AgentsConnected *int        `json:"agents_connected,omitempty"`
	HubID           string      `json:"hub_id"`
	Leader          ClusterPeer `json:"leader"`
	RelayedSockets  int         `json:"relayed_sockets"`
	Role            string      `json:"role"`
	Service         string      `json:"service"`
	Status          string      `json:"status"`
	Version         string      `json:"version"`
}

// ClusterPeer names the leader a hub follows: its id, where it answers
// HTTP, and its term.
type ClusterPeer struct {
	Epoch int64  `json:"epoch"`
	HubID string `json:"hub_id"`
	URL   string `json:"url"`
}
