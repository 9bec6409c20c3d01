package protocol

// CodeHubLoading refuses a request while the hub loads its stored state
// (503 with Retry-After): the caller retries soon, it is no failure of
// its own.
const CodeHubLoading = "hub_loading"

// StatusLoading is the Health status of a hub still loading.
const StatusLoading = "loading"

// LoadingHealth is GET /health (503) while the hub loads its stored
// state: load balancers and the cluster skip the hub until it answers 200.
// Phase is "storage" (opening and checking the tables) or "tasks" (loading
// the stored tasks); Loaded counts the tasks loaded so far and Total, when
// known, the tasks there are to load. A hub of a cluster (a leader loading
// its domain) adds what its ClusterHealth says of itself: HubID, Role and
// Leader; a single hub leaves them out. Fields are in the order the keys
// sort.
type LoadingHealth struct {
	HubID   string       `json:"hub_id,omitempty"`
	Leader  *ClusterPeer `json:"leader,omitempty"`
	Loaded  int64        `json:"loaded"`
	Phase   string       `json:"phase"`
	Role    string       `json:"role,omitempty"`
	Service string       `json:"service"`
	Status  string       `json:"status"`
	Total   *int64       `json:"total,omitempty"`
	Version string       `json:"version"`
}
