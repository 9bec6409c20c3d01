package messaging_test

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/storage/storagetest"
)

// fakeSockets is the socket layer: a fixed set of agents is online.
type fakeSockets struct {
	online []string
	mu     sync.Mutex
	pushed []string // "agent:message id"
}

func (f *fakeSockets) push(agent, id string) bool {
	if !slices.Contains(f.online, agent) {
		return false
	}
	f.mu.Lock()
	f.pushed = append(f.pushed, agent+":"+id)
	f.mu.Unlock()
	return true
}
func (f *fakeSockets) PushMessage(a string, m messaging.Message) bool { return f.push(a, m.ID) }
func (f *fakeSockets) PushChannelMessage(a, _ string, m messaging.Message) bool {
	return f.push(a, m.ID)
}
func (f *fakeSockets) PushMessages(to []string, m messaging.Message) int {
	n := 0
	for _, a := range to {
		if f.push(a, m.ID) {
			n++
		}
	}
	return n
}
func (f *fakeSockets) PushChannelMessages(to []string, _ string, m messaging.Message) int {
	return f.PushMessages(to, m)
}
func (f *fakeSockets) PushChannelJoined(string, string, string) bool { return true }
func (f *fakeSockets) Online(a string) bool                          { return slices.Contains(f.online, a) }
func (f *fakeSockets) OnlineAgents() []string                        { return f.online }

func service(t *testing.T, d storage.Driver, p messaging.Pusher) *messaging.Service {
	t.Helper()
	ms := d.Messages()
	chans, err := messaging.NewChannels(ms, messaging.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return messaging.NewService(messaging.NewMailbox(ms), messaging.NewHistory(ms), chans, messaging.NewThreads(ms),
		messaging.NewAnalytics(), p, benchDirectory{"alice", "bob", "carol"}, bus.New(), slog.New(slog.DiscardHandler))
}

// TestServiceOnEveryDriver routes direct, broadcast, reply and channel
// messages through the service on each driver, restarts, and finds
// everything where it was, with numbering that continues upward.
func TestServiceOnEveryDriver(t *testing.T) {
	for _, k := range storagetest.Drivers() {
		t.Run(k.Name, func(t *testing.T) {
			open := k.Open(t)
			d := open()
			sockets := &fakeSockets{online: []string{"carol"}}
			s := service(t, d, sockets)

			out, err := s.Send(messaging.Message{ID: "d1", From: "alice", To: "bob"}, nil)
			if err != nil || out != messaging.Queued {
				t.Fatalf("to offline bob: %q %v", out, err)
			}
			if out, err := s.Send(messaging.Message{ID: "d2", From: "alice", To: "carol"}, nil); err != nil || out != messaging.Delivered {
				t.Fatalf("to online carol: %q %v", out, err)
			}
			if out, err := s.Send(messaging.Message{ID: "b1", From: "alice", To: messaging.Broadcast}, nil); err != nil || out != messaging.Broadcasted {
				t.Fatalf("broadcast: %q %v", out, err)
			}
			if _, err := s.Send(messaging.Message{ID: "r1", From: "bob", To: "alice", ReplyTo: messaging.StrPtr("d1")}, nil); err != nil {
				t.Fatal(err)
			}
			_, err = s.Send(messaging.Message{ID: "x", From: "alice", To: "nobody"}, nil)
			if !errors.Is(err, messaging.ErrUnknownRecipient) {
				t.Fatalf("unknown recipient: %v", err)
			}
			if _, err := s.Channels.Create("#Dev", "", "alice"); err != nil {
				t.Fatal(err)
			}
			for _, a := range []string{"bob", "carol", "alice"} {
				if _, err := s.Subscribe("dev", a); err != nil {
					t.Fatal(err)
				}
			}
			n1, err := s.Publish("dev", messaging.Message{ID: "c1", From: "alice"})
			if err != nil {
				t.Fatal(err)
			}

			bob, last, err := s.Mailbox.Poll(t.Context(), "bob", 0, messaging.MailboxCap)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, m := range bob {
				ids = append(ids, m.ID)
			}
			if !slices.Equal(ids, []string{"d1", "b1", "c1"}) || bob[2].Payload["channel"] != "dev" {
				t.Fatalf("bob's mailbox: %v (%v)", ids, bob)
			}
			// Online carol: no copy of direct or broadcast messages; a
			// channel message is copied to every subscriber.
			if carol, _, _ := s.Mailbox.Poll(t.Context(), "carol", 0, 10); len(carol) != 1 || carol[0].ID != "c1" {
				t.Fatalf("online carol's mailbox: %v", carol)
			}
			if n, _ := s.Mailbox.Count(t.Context(), "alice"); n != 1 { // bob's reply
				t.Fatalf("alice's mailbox holds %d", n)
			}
			if !slices.Contains(sockets.pushed, "carol:b1") || !slices.Contains(sockets.pushed, "carol:c1") {
				t.Fatalf("pushed %v", sockets.pushed)
			}
			hist, _, err := s.History.Find(t.Context(), messaging.Query{})
			if err != nil || len(hist) != 4 {
				t.Fatalf("history: %d, %v", len(hist), err)
			}
			root, thread, err := s.Threads.Thread(t.Context(), "r1")
			if err != nil || root != "d1" || len(thread) != 2 {
				t.Fatalf("thread of r1: %q %v %v", root, thread, err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}

			// Restart.
			d = open()
			defer d.Close()
			s = service(t, d, sockets)
			again, _, err := s.Mailbox.Poll(t.Context(), "bob", 0, messaging.MailboxCap)
			if err != nil || len(again) != 3 {
				t.Fatalf("bob's mailbox after restart: %d, %v", len(again), err)
			}
			ch, err := s.Channels.Get("dev")
			if err != nil || !slices.Equal(ch.Subscribers, []string{"alice", "carol", "bob"}) {
				t.Fatalf("channel after restart: %+v %v", ch, err)
			}
			if err := s.Mailbox.Ack(t.Context(), "bob", last); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Send(messaging.Message{ID: "d3", From: "alice", To: "bob"}, nil); err != nil {
				t.Fatal(err)
			}
			after, _, _ := s.Mailbox.Poll(t.Context(), "bob", 0, messaging.MailboxCap)
			if len(after) != 1 || after[0].Seq <= last {
				t.Fatalf("after restart and ack: %v, last seq before %d", after, last)
			}
			n2, err := s.Publish("dev", messaging.Message{ID: "c2", From: "alice"})
			if err != nil || n2 <= n1 {
				t.Fatalf("channel seq after restart %d, before %d, %v", n2, n1, err)
			}
			if es, _ := s.Channels.History("dev", 10, 0); len(es) != 2 {
				t.Fatalf("channel history after restart: %d", len(es))
			}
		})
	}
}

// TestStampedIDsFollowStoredOnes: ids sort by the time they were
// stamped, and a service that follows the stored ids (as a hub does
// before it serves) stamps above messages a hub with a clock ahead of its
// own stored, in the global history and in a channel.
func TestStampedIDsFollowStoredOnes(t *testing.T) {
	for _, k := range storagetest.Drivers() {
		t.Run(k.Name, func(t *testing.T) {
			d := k.Open(t)()
			defer d.Close()
			s := service(t, d, &fakeSockets{})
			var ahead messaging.IDs
			now := time.Now()
			direct, channel := ahead.Next(now.Add(time.Hour)), ahead.Next(now.Add(2*time.Hour))
			if _, err := s.Send(messaging.Message{ID: direct, From: "alice", To: "bob"}, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Channels.Create("dev", "", "alice"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Publish("dev", messaging.Message{ID: channel, From: "alice"}); err != nil {
				t.Fatal(err)
			}

			var stamped []string
			stamp := func(s *messaging.Service) string {
				m := messaging.Message{From: "alice", To: "bob"}
				s.Stamp(&m)
				stamped = append(stamped, m.ID)
				return m.ID
			}
			// A service that has not followed them stamps below both: the
			// case FollowStoredIDs exists for.
			if id := stamp(service(t, d, &fakeSockets{})); id >= direct {
				t.Fatalf("unfollowed: stamped %s, not below %s (the test's premise)", id, direct)
			}
			followed := service(t, d, &fakeSockets{})
			if err := followed.FollowStoredIDs(t.Context()); err != nil {
				t.Fatal(err)
			}
			stamped = stamped[:0]
			for range 100 {
				if id := stamp(followed); id <= channel {
					t.Fatalf("followed: stamped %s, not above the channel's %s", id, channel)
				}
			}
			if !slices.IsSorted(stamped) || len(slices.Compact(slices.Clone(stamped))) != len(stamped) {
				t.Fatalf("stamped ids not strictly increasing: %v", stamped)
			}
		})
	}
}
