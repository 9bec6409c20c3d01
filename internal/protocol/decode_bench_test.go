package protocol

import "testing"

// BenchmarkDecodeFrame measures what the typed decode adds to validation
// on the agent socket's hot path.
func BenchmarkDecodeFrame(b *testing.B) {
	frames := map[string][]byte{
		"identify": []byte(`{"type":"identify","agent_id":"agent-0001","token":"0123456789abcdef0123456789abcdef","name":"agent-0001",` +
			`"status":"idle","capabilities":["code","review"],"client_type":"sidecar","protocol_version":1}`),
		"message": []byte(`{"type":"message","to":"agent-0002","message_type":"chat","payload":{"text":"hello there","pr":42},"protocol_version":1}`),
		"task_complete": []byte(`{"type":"task_complete","task_id":"task-0123456789abcdef","generation":3,` +
			`"result":{"status":"success","output":"done"},"tokens_used":1234,"protocol_version":1}`),
	}
	for name, data := range frames {
		b.Run(name+"/validate", func(b *testing.B) {
			for b.Loop() {
				obj, _ := DecodeObject(data)
				if _, err := ValidateFrame(obj); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/decode", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := DecodeFrame(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
