package bus

import (
	"slices"
	"testing"
)

// A typed subscription gets only its type, as that type; the ordered
// subscription beside it sees every type in publish order.
func TestSubscribeToFiltersAndKeepsOrder(t *testing.T) {
	b := New()
	as := SubscribeTo[taskA](b, 10)
	defer as.Close()
	all := b.Subscribe(10)
	defer all.Close()
	Publish(b, taskA{N: 1})
	Publish(b, taskB{N: 2})
	Publish(b, agentC{ID: "x"})
	PublishAt(b, 9, taskA{N: 3})

	if got := len(as.C); got != 2 {
		t.Fatalf("typed got %d events, want 2", got)
	}
	if s := <-as.C; s.V.N != 1 || s.Time == 0 {
		t.Fatalf("first %+v", s)
	}
	if s := <-as.C; s.V.N != 3 || s.Time != 9 {
		t.Fatalf("second %+v", s)
	}
	var order []string
	for range 4 {
		order = append(order, (<-all.C).Type())
	}
	if want := []string{"a", "b", "c", "a"}; !slices.Equal(order, want) {
		t.Fatalf("order %v want %v", order, want)
	}
}

func TestTypedDropsAndClose(t *testing.T) {
	b := New()
	s := SubscribeTo[taskB](b, 1)
	Publish(b, taskB{N: 1})
	Publish(b, taskB{N: 2}) // does not fit
	Publish(b, taskA{N: 3}) // not wanted: not a drop
	if s.Dropped() != 1 {
		t.Fatalf("dropped %d", s.Dropped())
	}
	s.Close()
	s.Close()
	Publish(b, taskB{N: 4})
	if v := <-s.C; v.V.N != 1 {
		t.Fatalf("buffered %+v", v)
	}
	if _, open := <-s.C; open {
		t.Fatal("closed typed subscription still receives")
	}
}
