package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// poster makes the load's POSTs over plain HTTP/1.1 keep-alive
// connections of its own. The hub and the load share the machine's CPUs,
// and net/http's client (two goroutines per connection, a channel hand-off
// per request and response, header maps) cost about as much CPU per
// submit as the hub's own handling of it: it showed in the figures as if
// it were the hub's. The hub sees the same requests (the same method,
// headers that matter, body, one request per POST on a kept-alive
// connection), so what is measured is unchanged. Only http:// hubs are
// posted to this way; https goes through net/http.
type poster struct {
	mu    sync.Mutex
	idle  map[string][]*postConn // by host:port
	max   int                    // idle connections kept per host
	close bool
}

type postConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte // request bytes, reused
}

// postTimeout bounds one request on the wire (a stuck hub fails the run
// instead of hanging it); the context's deadline applies when earlier.
const postTimeout = 60 * time.Second

// maxPostResponse bounds a response body read into memory.
const maxPostResponse = 1 << 20

func newPoster(maxIdle int) *poster {
	return &poster{idle: map[string][]*postConn{}, max: maxIdle}
}

// errStale: the request found its kept-alive connection closed, before
// the hub answered anything.
var errStale = errors.New("connection closed before the response")

// errNotPlainHTTP: the URL is not one poster handles (the caller uses
// net/http).
var errNotPlainHTTP = errors.New("not a plain http URL")

// post sends body to rawURL with the bearer token and returns the status
// and the response body.
func (p *poster) post(ctx context.Context, rawURL, token string, body []byte) (int, []byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil {
		return 0, nil, errNotPlainHTTP
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	pc, reused, err := p.get(ctx, host)
	if err != nil {
		return 0, nil, err
	}
	status, resp, keep, err := pc.roundTrip(ctx, u, token, body)
	if errors.Is(err, errStale) && reused && ctx.Err() == nil {
		// A kept-alive connection the hub had closed: once more on a new
		// one.
		_ = pc.c.Close()
		if pc, _, err = p.dial(ctx, host); err != nil {
			return 0, nil, err
		}
		status, resp, keep, err = pc.roundTrip(ctx, u, token, body)
	}
	if err != nil || !keep {
		_ = pc.c.Close()
		return status, resp, err
	}
	p.put(host, pc)
	return status, resp, nil
}

func (p *poster) get(ctx context.Context, host string) (*postConn, bool, error) {
	p.mu.Lock()
	if l := p.idle[host]; len(l) > 0 {
		pc := l[len(l)-1]
		p.idle[host] = l[:len(l)-1]
		p.mu.Unlock()
		return pc, true, nil
	}
	p.mu.Unlock()
	return p.dial(ctx, host)
}

func (p *poster) dial(ctx context.Context, host string) (*postConn, bool, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, false, ctxErr(ctx, fmt.Errorf("dial %s: %w", host, err))
	}
	return &postConn{c: c, r: bufio.NewReaderSize(c, 4096)}, false, nil
}

func (p *poster) put(host string, pc *postConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.close || len(p.idle[host]) >= p.max {
		_ = pc.c.Close()
		return
	}
	p.idle[host] = append(p.idle[host], pc)
}

// closeIdle closes every idle connection; later ones are closed as they
// come back.
func (p *poster) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.close = true
	for h, l := range p.idle {
		for _, pc := range l {
			_ = pc.c.Close()
		}
		delete(p.idle, h)
	}
}

// roundTrip writes one request and reads its response. keep reports
// whether the connection may carry another request.
func (pc *postConn) roundTrip(ctx context.Context, u *url.URL, token string, body []byte) (status int, resp []byte, keep bool, err error) {
	deadline := time.Now().Add(postTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := pc.c.SetDeadline(deadline); err != nil {
		return 0, nil, false, err
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b := append(pc.buf[:0], "POST "...)
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, u.Host...)
	b = append(b, "\r\nUser-Agent: agentcom-bench\r\nAuthorization: Bearer "...)
	b = append(b, token...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	pc.buf = b
	if _, err := pc.c.Write(b); err != nil {
		return 0, nil, false, ctxErr(ctx, fmt.Errorf("POST %s: %w: %w", u.Path, errStale, err))
	}
	if _, err := pc.r.Peek(1); errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		// Closed without a byte of answer: the hub had closed this idle
		// connection before the request arrived.
		return 0, nil, false, ctxErr(ctx, fmt.Errorf("POST %s: %w: %w", u.Path, errStale, err))
	}
	status, resp, keep, err = readResponse(pc.r)
	if err != nil {
		return 0, nil, false, ctxErr(ctx, fmt.Errorf("POST %s: %w", u.Path, err))
	}
	return status, resp, keep, nil
}

// ctxErr prefers the context's error when it ended (the deadline forced on
// the connection is then the cause).
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// readResponse reads an HTTP/1.1 response: a Content-Length or chunked
// body, at most maxPostResponse bytes.
func readResponse(r *bufio.Reader) (status int, body []byte, keep bool, err error) {
	line, err := readLine(r)
	if err != nil {
		return 0, nil, false, err
	}
	// "HTTP/1.1 201 Created"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, false, fmt.Errorf("malformed status line %.64q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("malformed status line %.64q", line)
	}
	keep = line[7] == '1'
	length, chunked := -1, false
	for {
		h, err := readLine(r)
		if err != nil {
			return 0, nil, false, err
		}
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, nil, false, fmt.Errorf("malformed header %.64q", h)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return 0, nil, false, fmt.Errorf("malformed Content-Length %.64q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
			if !chunked {
				return 0, nil, false, fmt.Errorf("unsupported Transfer-Encoding %.64q", v)
			}
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case chunked:
		body, err = readChunked(r)
	case length > maxPostResponse:
		return 0, nil, false, fmt.Errorf("response of %d bytes, over %d", length, maxPostResponse)
	case length >= 0:
		body = make([]byte, length)
		_, err = io.ReadFull(r, body)
	case status == 204 || status == 304 || status/100 == 1:
	default:
		// No length: the body runs to the close.
		body, err = io.ReadAll(io.LimitReader(r, maxPostResponse))
		keep = false
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("read response body: %w", err)
	}
	return status, body, keep, nil
}

func readChunked(r *bufio.Reader) ([]byte, error) {
	var body []byte
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("malformed chunk size %.64q", line)
		}
		if n == 0 {
			for { // trailers, up to the blank line
				t, err := readLine(r)
				if err != nil {
					return nil, err
				}
				if len(t) == 0 {
					return body, nil
				}
			}
		}
		if len(body)+int(n) > maxPostResponse {
			return nil, fmt.Errorf("response over %d bytes", maxPostResponse)
		}
		start := len(body)
		body = append(body, make([]byte, n)...)
		if _, err := io.ReadFull(r, body[start:]); err != nil {
			return nil, err
		}
		if crlf, err := readLine(r); err != nil || len(crlf) != 0 {
			return nil, fmt.Errorf("malformed chunk end")
		}
	}
}

// readLine reads one CRLF- (or LF-) ended line without its ending. The
// slice is valid until the next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("response line too long")
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
