package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress rewrites one status line in place (with \r) while a phase
// runs. A nil writer makes it a no-op.
type progress struct {
	w io.Writer

	mu     sync.Mutex
	stop   chan struct{}
	wg     sync.WaitGroup
	width  int
	label  string
	status func() string
	start  time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

// begin shows label and status() every quarter second until the next
// begin or end.
func (p *progress) begin(label string, status func() string) {
	p.end()
	if p.w == nil {
		return
	}
	p.mu.Lock()
	p.label, p.status, p.start = label, status, time.Now()
	p.stop = make(chan struct{})
	stop := p.stop
	p.mu.Unlock()
	p.wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		p.draw()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.draw()
			}
		}
	})
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("[%s %5.1fs] %s", p.label, time.Since(p.start).Seconds(), p.status())
	pad := max(p.width-len(line), 0)
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// end stops the line and clears it.
func (p *progress) end() {
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	p.wg.Wait()
	p.mu.Lock()
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	p.width = 0
	p.mu.Unlock()
}
