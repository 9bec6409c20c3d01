package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRelayEnvelopeRoundTrip(t *testing.T) {
	frame := []byte(`{"type":"task_complete","result":"` + strings.Repeat("é", 1000) + `"}`)
	for _, e := range []RelayEnvelope{
		{Kind: RelayOpen, Hub: "hub-b", Inst: "0123456789abcdef", Conn: 7, Seq: 1, Epoch: 3, Remote: "[::1]:5555"},
		{Kind: RelayFrame, Hub: "hub-b", Conn: 7, Seq: 2, Epoch: 3, Data: frame},
		{Kind: RelayFrame, Hub: "hub-b", Conn: 7, Seq: 3, Epoch: 3, Binary: true, Data: []byte{0, 1, 2, 0xff}},
		{Kind: RelayClose, Hub: "hub_b", Conn: 1 << 60, Seq: 9, Code: 4004, Reason: "token revoked"},
		{Kind: RelayLimit, Hub: "h", Conn: 1, Seq: 2, Limit: 16 << 20},
		{Kind: RelayHeartbeat, Hub: "h", Epoch: 1},
	} {
		b, err := e.Encode()
		if err != nil {
			t.Fatalf("encode %v: %v", e.Kind, err)
		}
		got, err := DecodeRelay(b)
		if err != nil {
			t.Fatalf("decode %v: %v", e.Kind, err)
		}
		if !bytes.Equal(got.Data, e.Data) {
			t.Fatalf("%v: data %q, want %q", e.Kind, got.Data, e.Data)
		}
		got.Data, e.Data = nil, nil
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip: %+v, want %+v", got, e)
		}
	}
}

// A frame travels raw: a 16 MiB report (the default report limit) and its
// header fit one bus message; one byte over the relay's limit does not.
func TestRelayEnvelopeSizes(t *testing.T) {
	big := make([]byte, 16<<20)
	b, err := RelayEnvelope{Kind: RelayFrame, Hub: "h", Conn: 1, Seq: 1, Data: big}.Encode()
	if err != nil || len(b) > MaxPayload || len(b) > len(big)+200 {
		t.Fatalf("16 MiB frame: %d bytes, %v", len(b), err)
	}
	if _, err := (RelayEnvelope{Kind: RelayFrame, Hub: "h", Data: make([]byte, MaxRelayFrame+1)}).Encode(); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
}

// Hostile or broken messages are refused, never trusted or panicked on.
func TestDecodeRelayRefusesBadInput(t *testing.T) {
	header := func(h string) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(h)))
		return append(out, h...)
	}
	huge := binary.BigEndian.AppendUint32(nil, 1<<31)
	for name, b := range map[string][]byte{
		"empty":            nil,
		"short":            {0, 0},
		"length past end":  append(binary.BigEndian.AppendUint32(nil, 100), `{"k":"hb"}`...),
		"huge length":      append(huge, `{}`...),
		"not json":         header(`{"k":`),
		"unknown kind":     header(`{"k":"shutdown","h":"a"}`),
		"no hub":           header(`{"k":"hb"}`),
		"hub with dot":     header(`{"k":"hb","h":"a.b"}`),
		"hub wildcard":     header(`{"k":"hb","h":"*"}`),
		"long hub":         header(`{"k":"hb","h":"` + strings.Repeat("a", MaxHubID+1) + `"}`),
		"long reason":      header(`{"k":"close","h":"a","reason":"` + strings.Repeat("r", 200) + `"}`),
		"long instance":    header(`{"k":"hb","h":"a","i":"` + strings.Repeat("i", 33) + `"}`),
		"negative limit":   header(`{"k":"limit","h":"a","limit":-1}`),
		"oversized header": header(`{"k":"hb","h":"a","r":"` + strings.Repeat("x", 2000) + `"}`),
	} {
		if _, err := DecodeRelay(b); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("%s: %v, want ErrBadEnvelope", name, err)
		}
	}
}

func FuzzDecodeRelay(f *testing.F) {
	b, _ := RelayEnvelope{Kind: RelayWrite, Hub: "hub-a", Conn: 3, Seq: 4, Data: []byte(`{"type":"pong"}`)}.Encode()
	f.Add(b)
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeRelay(b)
		if err != nil {
			return
		}
		again, err := e.Encode()
		if err != nil {
			t.Fatalf("decoded envelope does not encode: %v", err)
		}
		if _, err := DecodeRelay(again); err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
	})
}
