package ratelimit

import (
	"testing"
	"time"
)

func TestBucketsPerAgentAndClass(t *testing.T) {
	l := New(Limits{ClassMessages: {PerSecond: 1, Burst: 3}, ClassOther: {PerSecond: 1, Burst: 1}})
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.AllowClass(ClassMessages, "a"); !ok {
			t.Fatalf("message %d refused within burst", i)
		}
	}
	ok, wait := l.AllowClass(ClassMessages, "a")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("4th message: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := l.AllowClass(ClassMessages, "b"); !ok {
		t.Fatal("another agent shares a's bucket")
	}
	if ok, _ := l.AllowClass(ClassOther, "a"); !ok {
		t.Fatal("another class shares the message bucket")
	}
	now = now.Add(time.Second)
	if ok, _ := l.AllowClass(ClassMessages, "a"); !ok {
		t.Fatal("bucket did not refill")
	}
	if n := l.Sweep(time.Millisecond); n != 2 { // a/messages was just used
		t.Fatalf("swept %d buckets", n)
	}
}

func TestParse(t *testing.T) {
	l, err := Parse("messages=100:200, http=0:0")
	if err != nil {
		t.Fatal(err)
	}
	if l[ClassMessages] != (Limit{100, 200}) || l[ClassHTTP] != (Limit{}) || l[ClassTasks] != DefaultLimits()[ClassTasks] {
		t.Fatalf("parsed %v", l)
	}
	if ok, _ := New(l).AllowHTTP("x", false); !ok {
		t.Fatal("disabled class limited")
	}
	for _, bad := range []string{"messages", "nope=1:1", "messages=a:1", "messages=1:-1"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := Parse(DefaultLimits().String()); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}
