package sidecar

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/agentcom/agentcom/internal/protocol"
)

// maxReason is the hub's limit on a task_failed reason.
const maxReason = 2000

// maxResultFile caps the size of a result file the sidecar will read.
const maxResultFile = 8 << 20

// Outcome is the meaning of a result file.
type Outcome struct {
	// Success: report task_complete with Result; otherwise task_failed
	// with Reason.
	Success bool
	Result  json.RawMessage
	Reason  string
	// Output is the failed result object, kept so the hub can store it
	// with the error (nil when the file was not a JSON object).
	Output json.RawMessage
	// Usage is what the result file says the agent spent: its "usage"
	// object, else its "tokens_used" and "cost_usd" fields.
	Usage *protocol.Usage
}

// ParseResult decodes an agent's <task_id>.json. A JSON object with
// "status":"success" is a completion and is forwarded whole as the result.
// Any other object is a failure whose reason is its "reason", else its
// "error", else its "message", else "unknown" (non-string values are sent as their JSON text,
// cut to the hub's 2000 characters). Anything that is not a JSON object is
// a failure "result_parse_error: ...".
func ParseResult(data []byte) Outcome {
	if len(data) > maxResultFile {
		return Outcome{Reason: "result_parse_error: result file larger than 8 MiB"}
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&obj); err != nil {
		return Outcome{Reason: cut("result_parse_error: " + err.Error())}
	}
	if obj == nil {
		return Outcome{Reason: "result_parse_error: result is not a JSON object"}
	}
	if dec.More() {
		return Outcome{Reason: "result_parse_error: trailing data after the JSON object"}
	}
	var status string
	_ = json.Unmarshal(obj["status"], &status)
	compact := new(bytes.Buffer)
	if err := json.Compact(compact, bytes.TrimSpace(data)); err != nil {
		return Outcome{Reason: cut("result_parse_error: " + err.Error())}
	}
	usage := resultUsage(obj)
	if status == "success" {
		return Outcome{Success: true, Result: compact.Bytes(), Usage: usage}
	}
	out := Outcome{Output: compact.Bytes(), Usage: usage}
	for _, k := range []string{"reason", "error", "message"} {
		v, ok := obj[k]
		if !ok || string(v) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			if s == "" {
				continue
			}
			out.Reason = cut(s)
			return out
		}
		out.Reason = cut(string(v))
		return out
	}
	out.Reason = "unknown"
	return out
}

// resultUsage reads the usage a result object reports, nil if none.
func resultUsage(obj map[string]json.RawMessage) *protocol.Usage {
	var u protocol.Usage
	if v, ok := obj["usage"]; ok && json.Unmarshal(v, &u) == nil && !u.IsZero() {
		u = u.Normalize()
		return &u
	}
	_ = json.Unmarshal(obj["tokens_used"], &u.TotalTokens)
	_ = json.Unmarshal(obj["cost_usd"], &u.CostUSD)
	if u.IsZero() {
		return nil
	}
	u = u.Normalize()
	return &u
}

// cut shortens s to maxReason bytes without splitting a UTF-8 character.
func cut(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxReason {
		return s
	}
	s = s[:maxReason]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
