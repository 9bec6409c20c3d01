package cluster_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkBusPublish measures what one hub publishes to another, one
// message after another, at relay-frame sizes (200 bytes) and at sizes a
// stored payload carries (64 KiB), and with several publishers at once
// (a hub's sockets relaying concurrently).
func BenchmarkBusPublish(b *testing.B) {
	for _, k := range busKinds() {
		for _, size := range []int{200, 64 << 10} {
			for _, publishers := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/%dB/%dpub", k.name, size, publishers), func(b *testing.B) {
					benchPublish(b, k, size, publishers)
				})
			}
		}
	}
}

// benchWindow bounds the messages in flight, as a relaying hub's socket
// queues do; beyond the bus's queue bounds a bus drops by design.
const benchWindow = 256

func benchPublish(b *testing.B, k busKind, size, publishers int) {
	open := k.open(b)
	pub, sub := open(), open()
	subject := fmt.Sprintf("bench%d.s", size)
	window := make(chan struct{}, benchWindow)
	var received sync.WaitGroup
	received.Add(b.N * publishers)
	unsub, err := sub.Subscribe(subject, func([]byte) {
		<-window
		received.Done()
	})
	if err != nil {
		b.Fatal(err)
	}
	defer unsub()
	// One op is one message from each publisher.
	b.SetBytes(int64(size * publishers))
	b.ResetTimer()
	var wg sync.WaitGroup
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Distinct payloads, as relayed frames are (PostgreSQL folds
			// identical notifications of one transaction).
			payload := make([]byte, size)
			_, _ = rand.Read(payload[:8])
			for i := range b.N {
				binary.BigEndian.PutUint64(payload[8:], uint64(i))
				window <- struct{}{}
				if err := pub.Publish(context.Background(), subject, payload); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	received.Wait()
}
