package bus

import (
	"encoding/json"
	"testing"
)

// Test payloads: one type per kind, as the producers define them.
type taskA struct{ N int }
type taskB struct{ N int }
type agentC struct {
	ID string `json:"agent_id"`
}

func (taskA) Topic() string      { return TopicTasks }
func (taskA) EventType() string  { return "a" }
func (taskB) Topic() string      { return TopicTasks }
func (taskB) EventType() string  { return "b" }
func (agentC) Topic() string     { return TopicAgents }
func (agentC) EventType() string { return "c" }

func TestTopicsAndDrops(t *testing.T) {
	b := New()
	tasks := b.Subscribe(1, TopicTasks)
	all := b.Subscribe(10)
	Publish(b, taskA{})
	Publish(b, taskB{}) // does not fit tasks' buffer
	Publish(b, agentC{})
	if e := <-tasks.C; e.Type() != "a" || e.Topic() != TopicTasks || e.Time == 0 {
		t.Fatalf("got %+v", e)
	}
	if tasks.Dropped() != 1 || len(all.C) != 3 {
		t.Fatalf("dropped=%d all=%d", tasks.Dropped(), len(all.C))
	}
	tasks.Close()
	tasks.Close() // idempotent
	Publish(b, taskA{})
	if _, open := <-tasks.C; open {
		t.Fatal("closed subscription still receives")
	}
	all.Close()
}

func TestPublishAtKeepsTime(t *testing.T) {
	b := New()
	s := b.Subscribe(2)
	defer s.Close()
	PublishAt(b, 42, taskA{})
	PublishAt(b, 0, taskA{})
	if e := <-s.C; e.Time != 42 {
		t.Fatalf("time %d", e.Time)
	}
	if e := <-s.C; e.Time == 0 {
		t.Fatal("zero time not stamped")
	}
}

// The JSON form of an event keeps the shape it had when its fields were
// plain: topic, type, timestamp, data.
func TestEventJSON(t *testing.T) {
	got, err := json.Marshal(Event{Time: 7, Data: agentC{ID: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"topic":"agents","type":"c","timestamp":7,"data":{"agent_id":"x"}}`; string(got) != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if got, _ := json.Marshal(Event{}); string(got) != `{"topic":"","type":"","timestamp":0}` {
		t.Fatalf("empty event %s", got)
	}
}
