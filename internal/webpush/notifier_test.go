package webpush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentcom/agentcom/internal/store"
)

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBroadcastDropsGone runs a broadcast against a local push service
// where one subscription is gone (410), one is temporarily failing (500)
// and two work: the gone one is deleted, the failing one kept, and every
// delivered message decrypts to the notification.
func TestBroadcastDropsGone(t *testing.T) {
	ps := newPushService(t)
	sender, _ := newTestSender(t, ps, SenderOptions{})
	subs := newSubscriptions(t)
	agents := map[string]*userAgent{}
	for _, name := range []string{"ok1", "ok2", "gone", "flaky"} {
		ua := newUserAgent(t)
		agents["/"+name] = ua
		if err := subs.Add(t.Context(), ua.subscription(ps.URL+"/"+name)); err != nil {
			t.Fatal(err)
		}
	}
	ps.answer("/gone", http.StatusGone, "")
	ps.answer("/flaky", http.StatusServiceUnavailable, "try later")

	n := NewNotifier(sender, subs, NotifierOptions{Concurrency: 2})
	res, err := n.Notify(context.Background(), Notification{Title: "AgentCom Alert", Body: "Agent offline: a1"})
	if want := (BroadcastResult{Sent: 2, Dropped: 1, Failed: 1}); res != want {
		t.Fatalf("result = %+v, want %+v", res, want)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want the 503", err)
	}

	left, err := subs.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, s := range left {
		endpoints = append(endpoints, strings.TrimPrefix(s.Endpoint, ps.URL))
	}
	if want := []string{"/flaky", "/ok1", "/ok2"}; !reflect.DeepEqual(endpoints, want) {
		t.Fatalf("subscriptions left %v, want %v", endpoints, want)
	}

	want := `{"title":"AgentCom Alert","body":"Agent offline: a1","icon":"/favicon.ico"}`
	for _, r := range ps.requests() {
		plain, err := agents[r.path].decrypt(r.body)
		if err != nil {
			t.Fatalf("%s: %v", r.path, err)
		}
		if string(plain) != want {
			t.Fatalf("%s got %s, want %s", r.path, plain, want)
		}
	}

	// The next broadcast no longer tries the dropped subscription.
	before := len(ps.requests())
	if res, _ := n.Broadcast(context.Background(), []byte("again")); res.Sent+res.Failed+res.Dropped != 3 {
		t.Fatalf("second broadcast result %+v", res)
	}
	for _, r := range ps.requests()[before:] {
		if r.path == "/gone" {
			t.Fatal("dropped subscription was pushed to again")
		}
	}
}

// countingPusher records how many sends run at once.
type countingPusher struct {
	inFlight, maxInFlight atomic.Int32
	mu                    sync.Mutex
	sent                  []string
	release               chan struct{}
}

func (p *countingPusher) Send(ctx context.Context, sub Subscription, _ []byte) error {
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		m := p.maxInFlight.Load()
		if n <= m || p.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	if p.release != nil {
		select {
		case <-p.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	p.sent = append(p.sent, sub.Endpoint)
	p.mu.Unlock()
	return nil
}

// addSubscriptions stores n subscriptions in one transaction of the bolt
// table (Add one by one would fsync n times).
func addSubscriptions(t *testing.T, tbl *store.Table, n int) {
	t.Helper()
	ua := newUserAgent(t)
	err := tbl.Update(func(tx *store.Tx) error {
		for i := range n {
			s := ua.subscription(fmt.Sprintf("https://push.example/%03d", i))
			if err := tx.Put([]byte(s.Endpoint), mustJSON(t, s)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBroadcastConcurrencyBound(t *testing.T) {
	subs, tbl := newBoltSubscriptions(t)
	addSubscriptions(t, tbl, 40)
	// Sends block until released, so the bound is reached and held.
	p := &countingPusher{release: make(chan struct{})}
	n := NewNotifier(p, subs, NotifierOptions{Concurrency: 3})
	done := make(chan BroadcastResult)
	go func() {
		res, err := n.Broadcast(context.Background(), []byte("x"))
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	for range 40 {
		p.release <- struct{}{}
	}
	res := <-done
	if res != (BroadcastResult{Sent: 40}) {
		t.Fatalf("result %+v", res)
	}
	if m := p.maxInFlight.Load(); m > 3 {
		t.Fatalf("%d sends in flight, bound is 3", m)
	}
	if len(p.sent) != 40 {
		t.Fatalf("%d sends, want 40", len(p.sent))
	}
}

func TestBroadcastCanceled(t *testing.T) {
	subs, tbl := newBoltSubscriptions(t)
	addSubscriptions(t, tbl, 5)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := &countingPusher{}
	res, err := NewNotifier(p, subs, NotifierOptions{}).Broadcast(ctx, []byte("x"))
	if res != (BroadcastResult{Failed: 5}) || !errors.Is(err, context.Canceled) {
		t.Fatalf("result %+v, err %v; want 5 failed with context.Canceled", res, err)
	}
	if len(p.sent) != 0 {
		t.Fatal("sent after cancel")
	}
}

// failingPusher fails every send.
type failingPusher struct{}

func (failingPusher) Send(context.Context, Subscription, []byte) error {
	return errors.New("network down")
}

func TestBroadcastErrorIsBounded(t *testing.T) {
	subs, tbl := newBoltSubscriptions(t)
	addSubscriptions(t, tbl, 20)
	res, err := NewNotifier(failingPusher{}, subs, NotifierOptions{}).Broadcast(context.Background(), []byte("x"))
	if res != (BroadcastResult{Failed: 20}) {
		t.Fatalf("result %+v", res)
	}
	if err == nil || strings.Count(err.Error(), "network down") != maxReportedErrors ||
		!strings.Contains(err.Error(), "and 15 more errors") {
		t.Fatalf("err = %v", err)
	}
	if n, _ := subs.Count(t.Context()); n != 20 {
		t.Fatal("failed subscriptions were dropped")
	}
}

// TestBroadcastRemovesUnreadableRecords covers a hand-damaged table: the
// bad record is dropped and reported, the good one still gets the message.
func TestBroadcastRemovesUnreadableRecords(t *testing.T) {
	subs, tbl := newBoltSubscriptions(t)
	good := newUserAgent(t).subscription("https://push.example/good")
	if err := subs.Add(t.Context(), good); err != nil {
		t.Fatal(err)
	}
	err := tbl.Update(func(tx *store.Tx) error {
		if err := tx.Put([]byte("https://push.example/junk"), []byte("{not json")); err != nil {
			return err
		}
		// Valid JSON filed under another key.
		return tx.Put([]byte("https://push.example/misfiled"), mustJSON(t, good))
	})
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := subs.List(t.Context()); len(list) != 1 {
		t.Fatalf("List returned %d, want only the good one", len(list))
	}
	p := &countingPusher{}
	res, err := NewNotifier(p, subs, NotifierOptions{}).Broadcast(context.Background(), []byte("x"))
	if res != (BroadcastResult{Sent: 1, Dropped: 2}) {
		t.Fatalf("result %+v", res)
	}
	if err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("err = %v, want the unreadable records reported", err)
	}
	if n, _ := subs.Count(t.Context()); n != 1 {
		t.Fatalf("%d records left, want 1", n)
	}
}

func TestBroadcastRejectsLargePayload(t *testing.T) {
	subs, tbl := newBoltSubscriptions(t)
	addSubscriptions(t, tbl, 1)
	p := &countingPusher{}
	_, err := NewNotifier(p, subs, NotifierOptions{}).Broadcast(context.Background(), make([]byte, MaxPayloadSize+1))
	if !errors.Is(err, ErrPayloadTooLarge) || len(p.sent) != 0 {
		t.Fatalf("err = %v, sent %d", err, len(p.sent))
	}
}

func TestNotificationJSON(t *testing.T) {
	got := string(mustJSON(t, NewNotification("AgentCom Critical", "DETS recovery FAILED: task_queue -- x")))
	want := `{"title":"AgentCom Critical","body":"DETS recovery FAILED: task_queue -- x","icon":"/favicon.ico"}`
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
