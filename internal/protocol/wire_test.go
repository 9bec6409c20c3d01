package protocol

import (
	"errors"
	"testing"
)

// Only the schema's exact field names are decoded: encoding/json's
// case-insensitive matching would let "AGENT_ID", which validation never
// looked at, replace the validated agent_id.
func TestDecodeFrameReadsExactNamesOnly(t *testing.T) {
	_, f, err := DecodeFrame([]byte(`{"type":"identify","agent_id":"good","token":"t","AGENT_ID":"bad id!","Token":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if id := f.(Identify); id.AgentID != "good" || id.Token != "t" {
		t.Fatalf("got %+v", id)
	}
}

// A nested object of the wrong shape passes validation ("an object") and
// comes back as a MalformedError with the rest of the frame, so the
// handler answers it where it always did.
func TestDecodeFrameMalformedNested(t *testing.T) {
	_, f, err := DecodeFrame([]byte(`{"type":"task_complete","task_id":"t1","generation":2,"usage":{"input_tokens":"many"}}`))
	var me *MalformedError
	if !errors.As(err, &me) || !me.Has("usage") || me.Has("task_id") {
		t.Fatalf("err = %v", err)
	}
	if c := f.(TaskComplete); c.TaskID != "t1" || c.Generation != 2 || c.Usage != nil {
		t.Fatalf("frame = %+v", c)
	}
	// Validation errors come first and unchanged, with no frame.
	typ, f, err := DecodeFrame([]byte(`{"type":"task_complete","generation":1.5}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || typ != FrameTaskComplete || f != nil || len(ve.Errors) != 2 {
		t.Fatalf("typ %q frame %v err %v", typ, f, err)
	}
	if _, _, err := DecodeFrame([]byte(`{`)); !errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeBodyValidatesFirst(t *testing.T) {
	obj, _ := DecodeObject([]byte(`{"priority":"high"}`))
	_, err := DecodeBody[PostTask](obj)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Legacy != "missing required field: description" {
		t.Fatalf("err = %v", err)
	}
}

// Tags cannot name constants; this holds them to each other.
func TestTagLimitsMatchConstants(t *testing.T) {
	for _, f := range agentFrames[FrameTaskProgress].Fields {
		if f.Name == "output" && f.MaxLen != MaxProgressOutput {
			t.Fatalf("task_progress output max %d, MaxProgressOutput %d", f.MaxLen, MaxProgressOutput)
		}
	}
}
