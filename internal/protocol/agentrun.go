package protocol

import "encoding/json"

// Wire types of the sidecar's run mode: live output, verification checks
// and usage. They ride on optional fields of the original frames
// (task_progress "output" and "check", task_complete / task_failed
// "usage"), so the original clients, which never send them, are
// unaffected.

// Limits on what one frame may carry; the hub refuses larger values.
const (
	// MaxProgressOutput bounds task_progress "output" (characters).
	MaxProgressOutput = 64 << 10
	// MaxCheckCommand bounds a verification command (characters).
	MaxCheckCommand = 4096
	// MaxCheckOutput bounds a verification output tail (characters).
	MaxCheckOutput = 8 << 10
	// MaxVerifyCommands bounds how many verification commands a task has.
	MaxVerifyCommands = 20
	// MaxVerifyAttempts bounds a task's max_verify_attempts.
	MaxVerifyAttempts = 10
)

// Usage is what an agent reports it spent: tokens and cost. Every field is
// optional; absent fields count as zero.
type Usage struct {
	InputTokens  int64   `json:"input_tokens,omitempty"`
	OutputTokens int64   `json:"output_tokens,omitempty"`
	TotalTokens  int64   `json:"total_tokens,omitempty"`
	CostUSD      float64 `json:"cost_usd,omitempty"`
}

// Bounds of one usage report: hostile figures cannot overflow the sums.
const (
	MaxUsageTokens  = 1e12
	MaxUsageCostUSD = 1e9
)

// Normalize fills TotalTokens from the parts when it is missing and
// clamps every figure to [0, its maximum].
func (u Usage) Normalize() Usage {
	clamp := func(n int64) int64 { return min(max(n, 0), MaxUsageTokens) }
	u.InputTokens, u.OutputTokens, u.TotalTokens = clamp(u.InputTokens), clamp(u.OutputTokens), clamp(u.TotalTokens)
	if u.CostUSD < 0 || u.CostUSD != u.CostUSD {
		u.CostUSD = 0
	}
	u.CostUSD = min(u.CostUSD, MaxUsageCostUSD)
	if u.TotalTokens == 0 {
		u.TotalTokens = u.InputTokens + u.OutputTokens
	}
	return u
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{InputTokens: u.InputTokens + o.InputTokens, OutputTokens: u.OutputTokens + o.OutputTokens,
		TotalTokens: u.TotalTokens + o.TotalTokens, CostUSD: u.CostUSD + o.CostUSD}
}

// IsZero reports whether nothing was spent.
func (u Usage) IsZero() bool { return u == Usage{} }

// VerifyCheck is one verification command run after the agent succeeded,
// as the sidecar reports it in task_progress "check" and the hub records
// it in the task's history (event "verify").
type VerifyCheck struct {
	// Attempt is the agent run the check verified (1 = the first run).
	Attempt    int    `json:"attempt"`
	Command    string `json:"command"`
	ExitCode   int    `json:"exit_code"`
	Passed     bool   `json:"passed"`
	DurationMs int64  `json:"duration_ms"`
	// TimedOut is set when the command ran past the sidecar's
	// verify_timeout_ms and was killed.
	TimedOut   bool   `json:"timed_out,omitempty"`
	OutputTail string `json:"output_tail"`
}

// Bounded returns the check with its text fields cut to the limits.
func (c VerifyCheck) Bounded() VerifyCheck {
	c.Command = cutRunes(c.Command, MaxCheckCommand)
	c.OutputTail = cutRunes(c.OutputTail, MaxCheckOutput)
	return c
}

// cutRunes keeps the last n characters of s (the tail matters most).
func cutRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[len(r)-n:])
}

// TaskRevoked tells an agent to stop a task: task_cancelled (cancelled by
// an operator) or task_reassign (taken back by the hub; the reason is an
// addition old sidecars ignore).
type TaskRevoked struct {
	Type   string `json:"type"`
	TaskID string `json:"task_id"`
	// Generation, on an unasked task_reassign, is the task's generation
	// after the take-back: a holder of this generation or a later one (the
	// task was assigned to it again) keeps working.
	Generation *int64 `json:"generation,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// TaskProgress is the task_progress frame: the original's task_id and
// progress, plus the optional output chunk and verification check.
// Output's limit is MaxProgressOutput (a test holds the tag to it).
type TaskProgress struct {
	Type            string       `json:"type" protocol:"-"`
	TaskID          string       `json:"task_id" protocol:"required"`
	Progress        *int64       `json:"progress,omitempty"`
	Output          string       `json:"output,omitempty" protocol:"max=65536"`
	Check           *VerifyCheck `json:"check,omitempty"`
	ProtocolVersion any          `json:"protocol_version,omitempty"`
}

// Into decodes the object field k into dst (a typed struct). An absent
// field leaves dst unchanged.
func (o Object) Into(k string, dst any) error {
	v, ok := o[k]
	if !ok || v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

// TaskLogs is the answer of GET /api/tasks/{task_id}/logs: the output the
// hub keeps for the task after offset "since".
type TaskLogs struct {
	TaskID string `json:"task_id"`
	Status string `json:"status"`
	// Offset is where Data starts; pass Next as "since" to read on.
	Offset int64  `json:"offset"`
	Next   int64  `json:"next"`
	Data   string `json:"data"`
	// Truncated: output between "since" and Offset is no longer kept.
	Truncated bool `json:"truncated"`
	// Done: the task ended (completed, dead_letter, cancelled); no more
	// output will come.
	Done bool `json:"done"`
}

// MaxLogsWaitMs bounds the long-poll wait of GET /api/tasks/{id}/logs.
const MaxLogsWaitMs = 30000
