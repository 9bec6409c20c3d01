// Package client is a small typed Go client of the AgentCom hub's HTTP API
// (the routes of original-protocol.md §2 that the command-line tools need).
//
// Every method takes a context, sends JSON, and decodes the hub's JSON
// answer. A non-2xx answer becomes a *Error that carries the HTTP status and
// the hub's {"error": ...} body, so callers can test conditions with
// errors.As or the helpers IsNotFound / IsConflict / IsUnauthorized.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
)

// maxBody caps how much of a response the client reads; hub answers are
// small JSON documents, so anything larger is a misbehaving server.
const maxBody = 32 << 20

// Client talks to one hub with one bearer token. It is safe for concurrent
// use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New returns a client for the hub at baseURL (http(s)://host:port, a
// trailing slash is ignored). token may be empty for the unauthenticated
// routes. A nil httpClient means http.DefaultClient; callers that want a
// timeout pass a client that has one or use context deadlines.
func New(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: httpClient}
}

// BaseURL returns the hub base URL the client was built with, without a
// trailing slash.
func (c *Client) BaseURL() string { return c.base }

// WithToken returns a copy of the client that authenticates with token.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// WithHTTPClient returns a copy of the client that sends through hc (for
// calls that need another timeout).
func (c *Client) WithHTTPClient(hc *http.Client) *Client {
	cp := *c
	cp.hc = hc
	return &cp
}

// Error is a non-2xx answer from the hub.
type Error struct {
	Method string
	Path   string
	Status int
	// Code is the hub's "error" field ("task_not_found", "unauthorized"...),
	// empty when the body had none.
	Code string
	// Body is the raw response body (possibly truncated), for details such
	// as "task_id" or "hint" that vary per route.
	Body []byte
	// SentToken says the request carried a bearer token (a 401 then means
	// a wrong token rather than a missing one).
	SentToken bool
}

func (e *Error) Error() string {
	msg := e.Code
	if msg == "" {
		msg = strings.TrimSpace(string(e.Body))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if fes := e.FieldErrors(); fes != "" {
		msg += " (" + fes + ")"
	}
	return fmt.Sprintf("%s %s: hub answered %d: %s", e.Method, e.Path, e.Status, msg)
}

// maxRetryAfter bounds how long RetryAfter lets a hub make a client wait.
const maxRetryAfter = time.Minute

// RetryAfter reports how long a rate-limited answer (429 rate_limited)
// asks the caller to wait before the same request can pass: the body's
// retry_after_ms, at least 50 ms, at most a minute (a hub's answer is
// input like any other). ok is false for any other answer.
func (e *Error) RetryAfter() (wait time.Duration, ok bool) {
	if e.Status != http.StatusTooManyRequests || e.Code != protocol.CodeRateLimited {
		return 0, false
	}
	var b struct {
		RetryAfterMs int64 `json:"retry_after_ms"`
	}
	_ = json.Unmarshal(e.Body, &b)
	return min(max(time.Duration(b.RetryAfterMs)*time.Millisecond, 50*time.Millisecond), maxRetryAfter), true
}

// FieldErrors renders a validation answer's "errors" list as
// "field: detail; ...", bounded, or "" when there is none.
func (e *Error) FieldErrors() string {
	var b struct {
		Errors []struct {
			Field  string `json:"field"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(e.Body, &b) != nil {
		return ""
	}
	var parts []string
	for i, fe := range b.Errors {
		if i == 5 {
			parts = append(parts, "...")
			break
		}
		d := fe.Detail
		if len(d) > 200 {
			d = d[:200] + "..."
		}
		parts = append(parts, fe.Field+": "+d)
	}
	return strings.Join(parts, "; ")
}

// Field returns a top-level string field of the error body ("hint",
// "task_id", "message"...), or "" when absent.
func (e *Error) Field(name string) string {
	var m map[string]any
	if json.Unmarshal(e.Body, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

// UnreachableError is a request that got no answer at all: the hub is
// not listening, the name does not resolve, the connection broke.
type UnreachableError struct {
	URL    string // the hub's base URL
	Method string
	Path   string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s %s: no answer from the hub at %s: %v", e.Method, e.Path, e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// IsUnreachable reports whether err is (or wraps) an *UnreachableError.
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}

// StatusOf returns the HTTP status of err when it is (or wraps) a *Error,
// and 0 otherwise.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsConflict reports whether err is a 409 answer.
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict }

// IsUnauthorized reports whether err is a 401 or 403 answer.
func IsUnauthorized(err error) bool {
	s := StatusOf(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}

// Do sends one request and decodes a 2xx JSON answer into out (which may be
// nil, or a *json.RawMessage to keep the body as is). body, when not nil,
// is encoded as JSON. header adds request headers. It is exported so
// other commands can reach routes this package has no method for.
func (c *Client) Do(ctx context.Context, method, path string, body any, out any, header http.Header) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return &UnreachableError{URL: c.base, Method: method, Path: path, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := decodeError(method, path, resp.StatusCode, data)
		e.SentToken = c.token != ""
		return e
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], data...)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.Do(ctx, http.MethodGet, path, nil, out, nil)
}

func (c *Client) post(ctx context.Context, path string, body, out any) error {
	if body == nil {
		body = struct{}{}
	}
	return c.Do(ctx, http.MethodPost, path, body, out, nil)
}

func (c *Client) put(ctx context.Context, path string, body, out any) error {
	return c.Do(ctx, http.MethodPut, path, body, out, nil)
}

// decodeError builds the *Error of a non-2xx answer. The hub's "error"
// field is normally a string; any other JSON value is kept as its JSON text.
func decodeError(method, path string, status int, data []byte) *Error {
	e := &Error{Method: method, Path: path, Status: status, Body: data}
	var eb struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(data, &eb) == nil {
		switch v := eb.Error.(type) {
		case string:
			e.Code = v
		case nil:
		default:
			b, _ := json.Marshal(v)
			e.Code = string(b)
		}
	}
	return e
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
