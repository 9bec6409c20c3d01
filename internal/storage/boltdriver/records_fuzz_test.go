package boltdriver

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzRecordEncoders: the hand-written encoder of history and mailbox
// records (encodeRecord) writes what encoding/json writes for their
// structs: the same bytes for a compact message of plain ASCII, the same
// decoded record for any valid message (encoding/json compacts it and
// escapes <, > and &), whatever the agent id.
func FuzzRecordEncoders(f *testing.F) {
	f.Add(uint64(1), "agent-1", []byte(`{"id":"a","payload":{"text":"hi"}}`), int64(1_780_000_000_000))
	f.Add(uint64(0), "a", []byte(`{}`), int64(0))
	f.Add(uint64(1<<63), "a\"b\\c<d>&\x01é\u2028", []byte(`{"t":"<b>&amp;</b>","u":"\u2028"}`), int64(-5))
	f.Add(uint64(7), "x", []byte(" { \"a\" : [ 1 , 2.5e3 , null ] } "), int64(9))
	f.Fuzz(func(t *testing.T, n uint64, agent string, message []byte, storedAt int64) {
		if !json.Valid(message) {
			return // refused before any batch (storage.CheckAppend)
		}
		wantH, err := json.Marshal(historyRecord{Seq: n, Message: message, StoredAt: storedAt})
		if err != nil {
			t.Fatal(err)
		}
		sameRecord(t, encodeRecord(n, "", message, storedAt), wantH)
		if agent == "" {
			return // no mailbox has that name: "" asks for a history record
		}
		want, err := json.Marshal(mailboxRecord{Seq: n, AgentID: agent, Message: message, StoredAt: storedAt})
		if err != nil {
			t.Fatal(err)
		}
		sameRecord(t, encodeRecord(n, agent, message, storedAt), want)
	})
}

// sameRecord fails unless got decodes to what want does, and equals it
// byte for byte when want holds no escape encoding/json adds.
func sameRecord(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("encoded %q: not JSON: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("encoded %q, encoding/json %q", got, want)
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, got)
	if compact.Len() == len(got) && !bytes.ContainsAny(want, `\`) && !bytes.Equal(got, want) {
		t.Fatalf("encoded %q, encoding/json %q", got, want)
	}
}
