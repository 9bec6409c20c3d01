package sidecar

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentcom/agentcom/internal/protocol"
)

// FuzzVerifySpec: whatever the hub puts in metadata, verifySpec either
// refuses it or returns bounded, non-empty commands and a budget in range.
func FuzzVerifySpec(f *testing.F) {
	for _, s := range []string{`{}`, `{"verify":"go test ./..."}`, `{"verify":["a","b"],"max_verify_attempts":2}`,
		`{"verify":[""]}`, `{"verify":1}`, `{"verify":["x"],"max_verify_attempts":1.5}`, `{"verify":["x"],"max_verify_attempts":99}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, meta []byte) {
		cmds, n, err := verifySpec(meta, 3)
		if err != nil || len(cmds) == 0 {
			return
		}
		if len(cmds) > protocol.MaxVerifyCommands || n < 1 || n > protocol.MaxVerifyAttempts {
			t.Fatalf("out of bounds: %d commands, budget %d", len(cmds), n)
		}
		for _, c := range cmds {
			if strings.TrimSpace(c) == "" || len(c) > protocol.MaxCheckCommand || strings.ContainsRune(c, 0) {
				t.Fatalf("bad command %q", c)
			}
		}
	})
}

// FuzzResultAndUsage: any result file yields an outcome with a bounded
// reason and, when usage is reported, non-negative figures.
func FuzzResultAndUsage(f *testing.F) {
	for _, s := range []string{`{"status":"success"}`, `{"status":"error","message":"m"}`, `{"usage":{"input_tokens":-5,"cost_usd":-1}}`,
		`{"tokens_used":12,"cost_usd":0.5}`, `x`, `{"reason":{"a":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out := ParseResult(data)
		if !out.Success && (out.Reason == "" || len(out.Reason) > maxReason || !utf8.ValidString(out.Reason)) {
			t.Fatalf("reason %q", out.Reason)
		}
		if u := out.Usage; u != nil && (u.InputTokens < 0 || u.OutputTokens < 0 || u.TotalTokens < 0 || u.CostUSD < 0) {
			t.Fatalf("usage %+v", *u)
		}
	})
}
