package tasklog

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/testenv"
)

func TestMain(m *testing.M) { testenv.VerifyNone(m) }

func TestAppendReadAndBounds(t *testing.T) {
	s := New(Config{MaxBytes: 10, MaxTasks: 2})
	if c := s.Read("a", 0); c.Data != "" || c.Next != 0 || c.Truncated {
		t.Fatalf("empty = %+v", c)
	}
	s.Append("a", "hello ")
	s.Append("a", "world")
	c := s.Read("a", 0)
	if c.Data != "ello world" || c.Offset != 1 || c.Next != 11 || !c.Truncated {
		t.Fatalf("bounded = %+v", c)
	}
	if c := s.Read("a", 6); c.Data != "world" || c.Offset != 6 || c.Truncated {
		t.Fatalf("from 6 = %+v", c)
	}
	if c := s.Read("a", 11); c.Data != "" || c.Next != 11 || c.Truncated {
		t.Fatalf("at end = %+v", c)
	}
	// An offset beyond the end (offsets restarted) reads from the oldest.
	if c := s.Read("a", 500); c.Data != "ello world" || !c.Truncated {
		t.Fatalf("beyond = %+v", c)
	}
	// Never half a character at the front.
	s.Append("b", strings.Repeat("é", 8)) // 16 bytes
	if c := s.Read("b", 0); !utf8.ValidString(c.Data) || c.Data != strings.Repeat("é", 5) {
		t.Fatalf("utf8 = %q", c.Data)
	}
	// A third task evicts the least recently written one.
	s.Append("a", "!")
	s.Append("c", "x")
	if c := s.Read("b", 0); c.Data != "" {
		t.Fatalf("b not evicted: %+v", c)
	}
	if c := s.Read("a", 11); c.Data != "!" {
		t.Fatalf("a evicted: %+v", c)
	}
}

func TestChangedWakesOnOutputTouchAndFollow(t *testing.T) {
	s := New(Config{})
	ch := s.Changed("a")
	s.Append("a", "x")
	select {
	case <-ch:
	default:
		t.Fatal("append did not wake")
	}
	ch = s.Changed("a")
	b := bus.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Follow(ctx, b, func(e bus.Event) string { return string(e.Data.(taskEvent)) })
	}()
	deadline := time.After(10 * time.Second)
	for woke := false; !woke; {
		bus.Publish(b, taskEvent("a")) // until Follow has subscribed
		select {
		case <-ch:
			woke = true
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("task event did not wake")
		}
	}
	cancel()
	<-done
}

// taskEvent is a task-topic event naming a task id.
type taskEvent string

func (taskEvent) Topic() string     { return bus.TopicTasks }
func (taskEvent) EventType() string { return "task_completed" }
