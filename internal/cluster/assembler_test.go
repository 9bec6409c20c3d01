package cluster

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func chunk(sender byte, seq uint64, index, count, total uint32, data []byte) []byte {
	f := make([]byte, chunkHeader+len(data))
	f[0] = frameChunk
	f[1] = sender
	binary.BigEndian.PutUint64(f[9:17], seq)
	binary.BigEndian.PutUint32(f[17:21], index)
	binary.BigEndian.PutUint32(f[21:25], count)
	binary.BigEndian.PutUint32(f[25:29], total)
	copy(f[chunkHeader:], data)
	return f
}

// TestAssembler: chunks of two senders interleaved assemble; hostile or
// broken sequences (a missing chunk, joining mid-message, wrong sizes,
// oversized totals, garbage) yield nothing and keep bounded state.
func TestAssembler(t *testing.T) {
	var a assembler
	if p, ok := a.add([]byte("wabc")); !ok || string(p) != "abc" {
		t.Fatalf("whole frame: %q %v", p, ok)
	}
	steps := []struct {
		frame []byte
		want  string
	}{
		{chunk(1, 1, 0, 2, 4, []byte("ab")), ""},
		{chunk(2, 7, 0, 2, 3, []byte("xy")), ""},
		{chunk(1, 1, 1, 2, 4, []byte("cd")), "abcd"},
		{chunk(2, 7, 1, 2, 3, []byte("z")), "xyz"},
		{chunk(1, 2, 1, 2, 4, []byte("cd")), ""},   // joined mid-message
		{chunk(1, 3, 0, 3, 6, []byte("ab")), ""},   // sender 1, message 3 …
		{chunk(1, 4, 0, 2, 4, []byte("ab")), ""},   // … abandoned for message 4
		{chunk(1, 3, 1, 3, 6, []byte("cd")), ""},   // message 3 is gone
		{chunk(1, 4, 1, 2, 4, []byte("cde")), ""},  // too long for its total
		{chunk(3, 1, 0, 1, MaxPayload+1, nil), ""}, // total over the bound
		{chunk(3, 1, 2, 1, 4, []byte("ab")), ""},   // index beyond count
		{chunk(3, 2, 0, 1, 4, []byte("ab")), ""},   // short of its total
		{[]byte("c\x01"), ""},                      // truncated header
		{[]byte("?junk"), ""},                      // unknown frame
		{nil, ""},
	}
	for i, s := range steps {
		p, ok := a.add(s.frame)
		if ok != (s.want != "") || !bytes.Equal(p, []byte(s.want)) {
			t.Fatalf("step %d: got %q %v, want %q", i, p, ok, s.want)
		}
	}
	for i := range 3 * maxAssembly {
		a.add(chunk(byte(10+i), 1, 0, 2, 4, []byte("ab")))
	}
	if len(a.partial) > maxAssembly {
		t.Fatalf("%d partial messages kept, bound %d", len(a.partial), maxAssembly)
	}
}
