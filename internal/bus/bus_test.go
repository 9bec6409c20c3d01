package bus

import "testing"

func TestTopicsAndDrops(t *testing.T) {
	b := New()
	tasks := b.Subscribe(1, TopicTasks)
	all := b.Subscribe(10)
	b.Publish(Event{Topic: TopicTasks, Type: "a"})
	b.Publish(Event{Topic: TopicTasks, Type: "b"}) // does not fit tasks' buffer
	b.Publish(Event{Topic: TopicAgents, Type: "c"})
	if e := <-tasks.C; e.Type != "a" || e.Time == 0 {
		t.Fatalf("got %+v", e)
	}
	if tasks.Dropped() != 1 || len(all.C) != 3 {
		t.Fatalf("dropped=%d all=%d", tasks.Dropped(), len(all.C))
	}
	tasks.Close()
	tasks.Close() // idempotent
	b.Publish(Event{Topic: TopicTasks})
	if _, open := <-tasks.C; open {
		t.Fatal("closed subscription still receives")
	}
	all.Close()
}
