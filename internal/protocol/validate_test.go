package protocol

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestValidateFrameOrdersErrors(t *testing.T) {
	obj, err := DecodeObject([]byte(`{"type":"channel_publish","payload":[],"reply_to":1,"message_type":2}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ValidateFrame(obj)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, fe := range ve.Errors {
		got = append(got, fe.Field+":"+fe.Error)
	}
	want := []string{"channel:required", "payload:wrong_type", "message_type:wrong_type", "reply_to:wrong_type"}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
}

func TestIntegerTyping(t *testing.T) {
	for _, tc := range []struct {
		num   string
		isInt bool
	}{{"1", true}, {"-5", true}, {"1.0", false}, {"1e3", false}, {"2E1", false}} {
		if got := isIntegerToken(json.Number(tc.num)); got != tc.isInt {
			t.Errorf("%s: got %v", tc.num, got)
		}
	}
}

func TestNullOptionalIsAbsent(t *testing.T) {
	obj, _ := DecodeObject([]byte(`{"type":"identify","agent_id":"a","token":"t","name":null,"capabilities":null}`))
	if _, err := ValidateFrame(obj); err != nil {
		t.Fatalf("null optional fields must pass: %v", err)
	}
	obj, _ = DecodeObject([]byte(`{"type":"identify","agent_id":null,"token":"t"}`))
	if _, err := ValidateFrame(obj); err == nil {
		t.Fatal("null required field must fail")
	}
}

func TestEveryBodySchemaHasRequiredLegacyOrNone(t *testing.T) {
	for name, s := range httpBodies {
		for _, f := range s.Fields {
			if f.Required && s.Legacy == "" {
				t.Errorf("%s: required field %s without an error string", name, f.Name)
			}
		}
	}
}

// FuzzAgentFrame feeds arbitrary bytes through the agent-frame decoder and
// validator: they must never panic, and a frame that validates must carry
// a known type.
func FuzzAgentFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"identify","agent_id":"a","token":"t","capabilities":["x"]}`,
		`{"type":"task_complete","task_id":"task-1","generation":1,"result":{}}`,
		`{"type":"message","payload":{"a":[1,2,{"b":null}]},"to":"x"}`,
		`{"type":1}`, `[]`, `null`, `"x"`, `{"type":"ping","protocol_version":1}`, `{`, ``,
		`{"type":"channel_history","channel":"c","limit":1e99}`,
		`{"type":"task_failed","task_id":"t","generation":99999999999999999999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := DecodeObject(data)
		if err != nil {
			return
		}
		typ, err := ValidateFrame(obj)
		if err == nil {
			if _, ok := agentFrames[typ]; !ok {
				t.Fatalf("validated unknown type %q", typ)
			}
		}
		// Decoding accepts whatever validation accepts: at worst a nested
		// object of the wrong shape, reported with the frame.
		dtyp, f, derr := DecodeFrame(data)
		var me *MalformedError
		switch {
		case err != nil && (derr == nil || f != nil || derr.Error() != err.Error()):
			t.Fatalf("validation said %v, decode %v (frame %v)", err, derr, f)
		case err == nil && (f == nil || dtyp != typ || f.FrameType() != typ || (derr != nil && !errors.As(derr, &me))):
			t.Fatalf("valid %s frame decoded as %q %v, %v", typ, dtyp, f, derr)
		}
	})
}

// FuzzHTTPBody runs every HTTP body schema over arbitrary JSON.
func FuzzHTTPBody(f *testing.F) {
	f.Add([]byte(`{"description":"d","priority":"high","max_retries":2}`))
	f.Add([]byte(`{"payload":{},"to":"b"}`))
	f.Add([]byte(`{"seq":"x"}`))
	f.Add([]byte(`{"endpoint":"https://x","keys":{}}`))
	f.Add([]byte(`{"mailbox_ttl_ms":9223372036854775807}`))
	f.Add([]byte(`{"heartbeat_interval_ms":1e13}`))
	f.Add([]byte(`{"agent_id":"a2\u0000","role":"agent"}`))
	f.Add([]byte(`{"payload":{},"to":"../../x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := DecodeObject(data)
		if err != nil {
			return
		}
		for name := range httpBodies {
			verr := ValidateBody(name, obj)
			b, derr := DecodeBodyNamed(name, obj)
			var me *MalformedError
			if (verr == nil) != (b != nil) || (verr == nil && derr != nil && !errors.As(derr, &me)) {
				t.Fatalf("%s: validate %v, decode %v, %v", name, verr, b, derr)
			}
		}
	})
}

// Numbers beyond float64 are refused at decode: relayed, they would make
// frames other clients cannot read.
func TestDecodeRefusesNumbersBeyondFloat64(t *testing.T) {
	for _, in := range []string{`{"a":1e309}`, `{"a":[{"b":-1e400}]}`, `{"type":"message","payload":{"x":[1,2,1e999]}}`} {
		if _, err := DecodeObject([]byte(in)); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("%s: %v, want ErrInvalidJSON", in, err)
		}
	}
	for _, in := range []string{`{"a":1e308}`, `{"a":-0.0000001}`, `{"a":123456789012345678901234567890}`} {
		if _, err := DecodeObject([]byte(in)); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
}
