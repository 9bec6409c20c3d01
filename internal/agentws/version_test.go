package agentws_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
)

// protocol_version is negotiated at identify: a client of version 1 (or
// one that sends nothing, or a value that is no integer) gets the original
// identified frame and nothing more; a newer client is told the version
// the hub speaks, in identified and in a protocol_version_unsupported
// error, and keeps working.
func TestProtocolVersionNegotiated(t *testing.T) {
	h := hubtest.Start(t, "")
	tok := h.Token("a1", auth.RoleAgent)
	plain := map[string]any{"type": "identified", "agent_id": "a1"}
	for _, tc := range []struct {
		name    string
		version string // the raw JSON value, "" for none
		want    []map[string]any
	}{
		{"v1", `1`, []map[string]any{plain}},
		{"absent", ``, []map[string]any{plain}},
		{"text", `"2"`, []map[string]any{plain}},
		{"float", `1.5`, []map[string]any{plain}},
		{"object", `{"v":2}`, []map[string]any{plain}},
		{"zero", `0`, []map[string]any{plain}},
		{"v2", `2`, []map[string]any{{"type": "identified", "agent_id": "a1", "protocol_version": float64(2)}}},
		{"newer", `3`, []map[string]any{
			{"type": "identified", "agent_id": "a1", "protocol_version": float64(2)},
			{"type": "error", "error": "protocol_version_unsupported", "supported": []any{float64(1), float64(2)}, "using": float64(2)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := hubtest.Dial(t, h.WSURL())
			defer c.Close()
			frame := `{"type":"identify","agent_id":"a1","token":"` + tok + `","name":"a1","status":"idle","capabilities":[]`
			if tc.version != "" {
				frame += `,"protocol_version":` + tc.version
			}
			c.Send(frame + `}`)
			for i, want := range tc.want {
				if got := c.Next(5 * time.Second); !reflect.DeepEqual(got, want) {
					t.Fatalf("frame %d = %v, want %v", i, got, want)
				}
			}
			// Nothing else came before the client's next answer, and the
			// socket works.
			c.Send(`{"type":"ping"}`)
			if got := c.Next(5 * time.Second); got["type"] != "pong" {
				t.Fatalf("after identify: %v", got)
			}
		})
	}
}
