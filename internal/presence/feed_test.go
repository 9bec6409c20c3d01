package presence_test

import (
	"encoding/json"
	"testing"

	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/protocol"
)

func change(kind presence.ChangeKind, id string) presence.Change {
	return presence.Change{Kind: kind, Agent: protocol.AgentInfo{AgentID: id, Name: id, Status: "idle", Capabilities: []string{}}}
}

func appendAll(t *testing.T, f *presence.Feed, changes ...presence.Change) {
	t.Helper()
	for _, c := range changes {
		if _, err := f.Append(c); err != nil {
			t.Fatal(err)
		}
	}
}

func frames(t *testing.T, r *presence.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	for {
		got := r.Next(nil)
		if len(got) == 0 {
			return out
		}
		for _, b := range got {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			out = append(out, m)
		}
	}
}

// A version-1 reader gets the original frames, one per change, without
// its own join and without an agent that came and went unseen.
func TestReaderVersion1Coalesces(t *testing.T) {
	f := presence.NewFeed(100)
	r := f.NewReader(f.Head(), presence.ReaderConfig{Self: "me", Version: 1})
	appendAll(t, f, change(presence.ChangeJoined, "me"), change(presence.ChangeJoined, "a"),
		change(presence.ChangeJoined, "gone"), change(presence.ChangeStatus, "gone"), change(presence.ChangeLeft, "gone"),
		change(presence.ChangeStatus, "me"), change(presence.ChangeLeft, "a"), change(presence.ChangeJoined, "a"))
	var got []string
	for _, m := range frames(t, r) {
		id, _ := m["agent_id"].(string)
		if a, ok := m["agent"].(map[string]any); ok {
			id = a["agent_id"].(string)
		}
		got = append(got, m["type"].(string)+":"+id)
	}
	// a joined and left too, but its leave is kept: it joined again, and
	// cancelling only its first pair leaves the client's picture right.
	want := []string{"status_changed:me", "agent_joined:a"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %v, want %v", got, want)
	}
	if r.Pending() {
		t.Fatal("still pending after Next returned nothing")
	}
}

// A version-2 reader gets one presence frame per call, and a resync frame
// when more changes wait than one frame lists.
func TestReaderVersion2Batches(t *testing.T) {
	f := presence.NewFeed(100)
	r := f.NewReader(f.Head(), presence.ReaderConfig{Self: "me", Version: 2, Batch: 4})
	appendAll(t, f, change(presence.ChangeJoined, "a"), change(presence.ChangeJoined, "b"), change(presence.ChangeLeft, "c"))
	got := frames(t, r)
	if len(got) != 1 || got[0]["type"] != protocol.OutPresence || len(got[0]["joined"].([]any)) != 2 || len(got[0]["left"].([]any)) != 1 {
		t.Fatalf("got %v", got)
	}
	for i := range 5 {
		appendAll(t, f, change(presence.ChangeJoined, string(rune('d'+i))))
	}
	if got := frames(t, r); len(got) != 1 || got[0]["resync"] != true {
		t.Fatalf("got %v", got)
	}
}

// The log keeps a bounded number of changes; a version-1 reader that fell
// behind it is reported lost (the hub closes it), a version-2 one resyncs.
func TestReaderLost(t *testing.T) {
	f := presence.NewFeed(4)
	lost := 0
	r1 := f.NewReader(f.Head(), presence.ReaderConfig{Version: 1, Lost: func() { lost++ }})
	r2 := f.NewReader(f.Head(), presence.ReaderConfig{Version: 2, Batch: 100})
	for i := range 10 {
		appendAll(t, f, change(presence.ChangeStatus, string(rune('a'+i))))
	}
	if got := frames(t, r1); lost != 1 || len(got) == 0 || len(got) >= 10 {
		t.Fatalf("lost %d, %d frames", lost, len(got))
	}
	if got := frames(t, r2); len(got) != 1 || got[0]["resync"] != true {
		t.Fatalf("got %v", got)
	}
}

// A reader that looks before anything changed still gets the changes
// that come after (an empty look is not remembered as a rendered frame).
func TestReaderEmptyLookFirst(t *testing.T) {
	f := presence.NewFeed(100)
	r := f.NewReader(f.Head(), presence.ReaderConfig{Self: "me", Version: 2})
	if got := frames(t, r); len(got) != 0 {
		t.Fatalf("got %v before any change", got)
	}
	appendAll(t, f, change(presence.ChangeJoined, "a"))
	if got := frames(t, r); len(got) != 1 || len(got[0]["joined"].([]any)) != 1 {
		t.Fatalf("got %v", got)
	}
}
