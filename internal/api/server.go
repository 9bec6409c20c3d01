// Package api serves the hub's HTTP routes. Every body and query parameter
// is checked against its schema in package protocol before a handler calls
// into the domain; handlers translate results into the original hub's
// JSON shapes and status codes.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/protocol"
)

// DefaultMaxBody is the largest request body accepted unless the hub sets
// another (SetMaxBody): what a task submission with its largest metadata
// needs, far below the original's 8 MiB.
const DefaultMaxBody = 1 << 20

// Route is one entry of the route table. The authorization test walks the
// table, so every route is declared here and nowhere else.
type Route struct {
	Method  string
	Path    string // net/http pattern path, e.g. /api/tasks/{task_id}
	Access  Access
	Handler func(*Request) Response
	// Raw handlers write their own response (WebSocket upgrades, assets).
	Raw http.Handler
	// Class, when set, is a rate-limit class applied per caller on top of
	// the HTTP limit (task submissions, registrations).
	Class string
	// Unlimited routes skip the HTTP rate limits: the agent socket's
	// handshake, bounded by its own caps and limited frame by frame.
	Unlimited bool
	// Body names the route's body schema (a protocol.Body* name). The
	// Server validates and decodes the body once, before the handler,
	// which reads it with BodyOf. Every POST and PUT route declares one
	// (protocol.BodyEmpty when it reads nothing).
	Body string
	// Guard, when set, runs before the body is validated: refusals the
	// original gave ahead of a bad body (a closed registration, an
	// unknown channel) keep coming first.
	Guard func(*Request) (Response, bool)
}

// Access says who may call a route.
type Access int

// Access levels.
const (
	Public         Access = iota // no token
	AnyToken                     // any valid token, Bearer header only (style A)
	AnyTokenB                    // any valid token, Bearer or ?token= (style B)
	Agent                        // an agent or admin token, Bearer only; acts as its own agent
	OwnAgent                     // style B, and the token must act as the path's {agent_id}
	Admin                        // an admin token, Bearer only
	Dashboard                    // public on a loopback-only hub, else viewer/admin token
	DashboardAdmin               // admin token; on a loopback-only hub, public
)

func (a Access) String() string {
	return [...]string{"public", "any_token", "any_token_b", "agent", "own_agent", "admin", "dashboard", "dashboard_admin"}[a]
}

// Request is what a handler sees: the parsed, validated input and who
// sent it.
type Request struct {
	*http.Request
	ID auth.Identity // zero for public routes
	// Body is the decoded JSON object, for presence checks and for
	// routes whose body a domain parser reads (alert configuration, push
	// subscriptions). Handlers read fields through BodyOf.
	Body   protocol.Object
	Params map[string]string // query string merged with body strings
	body   protocol.Body     // the route's typed body, decoded by the Server
	log    *slog.Logger
}

// BodyOf returns the request's body as its route declared it. It is
// the zero T when the route declared another body.
func BodyOf[T protocol.Body](r *Request) T {
	b, _ := r.body.(T)
	return b
}

// Response is a status and a JSON-encodable body.
type Response struct {
	Status int
	Body   any
}

// JSON builds a response.
func JSON(status int, body any) Response { return Response{Status: status, Body: body} }

// Err builds an {"error": code} response with optional extra fields:
// the refusals whose extra fields vary by route. Extra values are codes,
// ids and numbers, never an error's text (see errors.go).
func Err(status int, code string, kv ...any) Response {
	b := map[string]any{"error": code}
	for i := 0; i+1 < len(kv); i += 2 {
		b[kv[i].(string)] = kv[i+1]
	}
	return Response{Status: status, Body: b}
}

// Verifier checks tokens.
type Verifier interface {
	Verify(token string) (auth.Identity, error)
}

// Server routes HTTP requests.
type Server struct {
	mux      *http.ServeMux
	tokens   Verifier
	loopback bool
	hosts    Hosts
	log      *slog.Logger
	routes   []Route
	limiter  Limiter
	obs      Observer
	maxBody  int64
}

// Limiter rate-limits HTTP callers by key (token or client IP).
type Limiter interface {
	AllowHTTP(key string, public bool) (ok bool, retryAfterMs int64)
	AllowClass(class, key string) (ok bool, wait time.Duration)
}

// Observer is told about requests, for metrics.
type Observer interface {
	HTTPRequest(route string, status int)
	ValidationFailed(schema string)
	RateLimited(route string)
}

// LocalOperator is who a tokenless dashboard caller on a loopback-only
// hub speaks for.
var LocalOperator = auth.Identity{Role: auth.RoleAdmin, AgentID: "local-operator"}

// NewServer builds the router. loopbackOnly says the hub listens only on
// loopback, which lets the dashboard go without a token; hosts says which
// Host headers are served at all.
func NewServer(tokens Verifier, loopbackOnly bool, hosts Hosts, log *slog.Logger) *Server {
	return &Server{mux: http.NewServeMux(), tokens: tokens, loopback: loopbackOnly, hosts: hosts, log: log.With("component", "api"),
		maxBody: DefaultMaxBody}
}

// SetMaxBody sets the largest request body accepted, in bytes.
func (s *Server) SetMaxBody(n int64) { s.maxBody = n }

// SetLimiter installs an HTTP rate limiter.
func (s *Server) SetLimiter(l Limiter) { s.limiter = l }

// SetObserver installs a metrics observer.
func (s *Server) SetObserver(o Observer) { s.obs = o }

// Handle registers routes.
func (s *Server) Handle(routes ...Route) {
	for _, r := range routes {
		s.routes = append(s.routes, r)
		s.mux.Handle(r.Method+" "+r.Path, s.wrap(r))
	}
}

// Routes returns the route table.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// ServeHTTP cleans the path (empty segments and a trailing slash are
// ignored, as in the original) and answers unknown routes, and known paths
// with another method, with 404 {"error":"not_found"}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hosts.Allowed(r.Host) {
		// A name the hub does not serve: most likely DNS rebinding.
		writeJSON(w, http.StatusMisdirectedRequest, protocol.ErrorReply{Error: "host_not_allowed",
			Detail: "this hub does not answer to that host name; the operator can add it with --allowed-hosts"})
		return
	}
	if p := cleanPath(r.URL.Path); p != r.URL.Path {
		r.URL.Path = p
		r.URL.RawPath = ""
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		writeJSON(w, http.StatusNotFound, protocol.ErrorReply{Error: "not_found"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

func cleanPath(p string) string {
	if p == "" || p == "/" {
		return "/"
	}
	c := path.Clean("/" + strings.Trim(p, "/"))
	return c
}

func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &Request{Request: r, Params: map[string]string{}, log: s.log}
		for k, v := range r.URL.Query() {
			if len(v) > 0 {
				req.Params[k] = v[0]
			}
		}
		if resp, ok := s.parseBody(req); !ok {
			s.write(w, rt, resp)
			return
		}
		id, resp, ok := s.authorize(rt.Access, req)
		if !ok {
			s.write(w, rt, resp)
			return
		}
		req.ID = id
		if s.limiter != nil && !rt.Unlimited {
			// Callers with a token are limited per agent; everyone else
			// (public routes, wrong join secrets) per address.
			key, public := "ip:"+clientIP(r), id.AgentID == ""
			if !public {
				key = "agent:" + id.AgentID
			}
			allowed, wait := s.limiter.AllowHTTP(key, public)
			if allowed && rt.Class != "" {
				var d time.Duration
				allowed, d = s.limiter.AllowClass(rt.Class, key)
				wait = d.Milliseconds()
			}
			if !allowed {
				if s.obs != nil {
					s.obs.RateLimited(rt.Path)
				}
				w.Header().Set("Retry-After", strconv.FormatInt(max((wait+999)/1000, 1), 10))
				s.write(w, rt, Err(http.StatusTooManyRequests, protocol.CodeRateLimited, "retry_after_ms", wait))
				return
			}
		}
		if rt.Raw != nil {
			rt.Raw.ServeHTTP(w, withCaller(r, id))
			return
		}
		if rt.Guard != nil {
			if resp, ok := rt.Guard(req); !ok {
				s.write(w, rt, resp)
				return
			}
		}
		if rt.Body != "" {
			if resp, ok := s.decodeBody(req, rt.Body); !ok {
				s.write(w, rt, resp)
				return
			}
		}
		s.write(w, rt, rt.Handler(req))
	})
}

// decodeBody validates the body against its schema (the original's error
// strings and order, unchanged) and keeps it decoded for BodyOf. A
// *MalformedError still yields a usable body: the fields it names stay
// zero and their handler refuses them as it always did.
func (s *Server) decodeBody(req *Request, schema string) (Response, bool) {
	b, err := protocol.DecodeBodyNamed(schema, req.Body)
	var ve *protocol.ValidationError
	if errors.As(err, &ve) {
		if s.obs != nil {
			s.obs.ValidationFailed(schema)
		}
		return validationResponse(ve), false
	}
	req.body = b
	return Response{}, true
}

func (s *Server) write(w http.ResponseWriter, rt Route, resp Response) {
	if s.obs != nil {
		s.obs.HTTPRequest(rt.Method+" "+rt.Path, resp.Status)
	}
	writeJSON(w, resp.Status, resp.Body)
}

// parseBody decodes a JSON body for methods that carry one, following the
// original's rules: no Content-Type means no body; a non-JSON type is 415;
// an empty body is {}.
func (s *Server) parseBody(req *Request) (Response, bool) {
	req.Body = protocol.Object{}
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return Response{}, true
	}
	ct := req.Header.Get("Content-Type")
	if ct == "" {
		return Response{}, true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !(mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return Err(http.StatusUnsupportedMediaType, "unsupported_media_type", "detail", "send Content-Type: application/json"), false
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, req.Request.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Err(http.StatusRequestEntityTooLarge, protocol.CodePayloadTooLarge, "limit_bytes", s.maxBody), false
		}
		return Err(http.StatusBadRequest, "invalid_body"), false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Response{}, true
	}
	obj, err := protocol.DecodeObject(data)
	if err != nil {
		if errors.Is(err, protocol.ErrInvalidJSON) {
			return Err(http.StatusBadRequest, protocol.CodeInvalidJSON), false
		}
		var ve *protocol.ValidationError
		if errors.As(err, &ve) {
			return validationResponse(ve), false
		}
	}
	req.Body = obj
	for k, v := range obj {
		if sv, ok := v.(string); ok {
			req.Params[k] = sv
		}
	}
	return Response{}, true
}

// authorize applies a route's access level.
func (s *Server) authorize(a Access, req *Request) (auth.Identity, Response, bool) {
	unauthA := Err(http.StatusUnauthorized, "unauthorized", "hint", "provide Authorization: Bearer <token>")
	unauthB := Err(http.StatusUnauthorized, "unauthorized")
	forbidden := func(need string) Response {
		return Err(http.StatusForbidden, "forbidden", "detail", "this route needs "+need)
	}
	switch a {
	case Public:
		return auth.Identity{}, Response{}, true
	case Dashboard, DashboardAdmin:
		if s.loopback && sameOrigin(req.Request) {
			// The tokenless local operator: only for requests addressed to
			// a name this hub serves (checked for every request above) and
			// sent by no browser page, or by a page of this hub itself.
			return LocalOperator, Response{}, true
		}
		tok, ok := bearerOrParam(req)
		if !ok {
			return auth.Identity{}, unauthB, false
		}
		id, err := s.tokens.Verify(tok)
		if err != nil {
			return auth.Identity{}, unauthB, false
		}
		if a == DashboardAdmin && !id.IsAdmin() {
			return id, forbidden("an admin token"), false
		}
		if id.Role != auth.RoleAdmin && id.Role != auth.RoleViewer {
			return id, forbidden("an admin or viewer token"), false
		}
		return id, Response{}, true
	case AnyTokenB, OwnAgent:
		tok, ok := bearerOrParam(req)
		if !ok {
			return auth.Identity{}, unauthB, false
		}
		id, err := s.tokens.Verify(tok)
		if err != nil {
			return auth.Identity{}, unauthB, false
		}
		if a == OwnAgent && !id.CanActAs(req.PathValue("agent_id")) {
			return id, unauthB, false
		}
		return id, Response{}, true
	}
	tok, ok := bearer(req.Request)
	if !ok {
		return auth.Identity{}, unauthA, false
	}
	id, err := s.tokens.Verify(strings.TrimSpace(tok))
	if err != nil {
		return auth.Identity{}, unauthA, false
	}
	switch a {
	case Agent:
		if id.Role == auth.RoleViewer {
			return id, forbidden("an agent or admin token"), false
		}
	case Admin:
		if !id.IsAdmin() {
			return id, forbidden("an admin token"), false
		}
	}
	return id, Response{}, true
}

// bearer returns the token of a single "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 || !strings.HasPrefix(h[0], "Bearer ") {
		return "", false
	}
	return h[0][len("Bearer "):], true
}

// bearerOrParam is auth style B: the Bearer header, or else the token
// parameter (query string or body). A bad Bearer token does not fall back.
func bearerOrParam(req *Request) (string, bool) {
	if t, ok := bearer(req.Request); ok {
		return t, true
	}
	t := req.Params["token"]
	return t, t != ""
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

func validationResponse(ve *protocol.ValidationError) Response {
	code := ve.Legacy
	if code == "" {
		code = protocol.CodeValidationFailed
	}
	return JSON(http.StatusBadRequest, protocol.ValidationReply{Error: code, Errors: ve.Errors})
}

// QueryInt parses an integer query parameter strictly (optional sign,
// decimal digits). def is returned when it is absent.
func QueryInt(req *Request, name string, def int64) (int64, *Response) {
	v, ok := req.URL.Query()[name]
	if !ok || len(v) == 0 {
		return def, nil
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		r := fieldErrors(protocol.FieldError{Field: name, Error: protocol.ErrWrongType, Detail: "expected integer", Value: v[0]})
		return 0, &r
	}
	return n, nil
}

// QueryLimit parses the page-size parameter "limit": def when absent,
// clamped to max; zero or negative is refused.
func QueryLimit(req *Request, def, max int) (int, *Response) {
	n, bad := QueryInt(req, "limit", int64(def))
	if bad != nil {
		return 0, bad
	}
	if n <= 0 {
		r := fieldErrors(protocol.FieldError{Field: "limit", Error: protocol.ErrInvalidValue, Detail: "expected a positive integer", Value: n})
		return 0, &r
	}
	return int(min(n, int64(max))), nil
}

// fieldErrors is a 400 validation_failed naming the fields at fault.
func fieldErrors(errs ...protocol.FieldError) Response {
	return JSON(http.StatusBadRequest, protocol.ValidationReply{Error: protocol.CodeValidationFailed, Errors: errs})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if body == nil {
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body)
}
