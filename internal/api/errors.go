package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"

	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/settings"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Error rule: an error's text never reaches a client. It may hold paths,
// SQL, addresses or a table's contents. A failure the caller cannot fix
// is answered with a stable code and an error_id, and the error is
// logged under that id so an operator can find it (Internal). Refusals
// the caller can act on (a bad field, a quota) are answered with their
// own code and a fixed or designed text, never err.Error() of a wrapped
// chain.

// PublicError is an error whose code and detail are meant for clients:
// the only kind a handler may put into a reply as it is.
type PublicError interface {
	error
	Code() string
	PublicDetail() string
}

// NewErrorID returns a fresh error id: 16 hex digits.
func NewErrorID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Internal logs err with a new error_id and answers 500 {"error": code,
// "error_id": id}.
func Internal(r *Request, code string, err error) Response {
	return InternalWith(r, http.StatusInternalServerError, protocol.ErrorReply{Error: code}, err)
}

// InternalWith logs err with a new error_id and answers reply, with the
// id added, under status: for the codes that carry a fixed detail or a
// table.
func InternalWith(r *Request, status int, reply protocol.ErrorReply, err error) Response {
	reply.ErrorID = NewErrorID()
	r.logger().Error("request failed", "event", "internal_error", "error_id", reply.ErrorID, "code", reply.Error,
		"method", r.Method, "path", r.URL.Path, "err", err)
	return JSON(status, reply)
}

func (r *Request) logger() *slog.Logger {
	if r.log == nil {
		return slog.Default()
	}
	return r.log
}

// storageErr answers a storage failure.
func storageErr(r *Request, err error) Response { return Internal(r, "storage_error", err) }

// ruleError is a refusal by one of the domain's input rules: a sentinel
// the rule wraps with the caller's own value and the configured limit,
// and no storage or system text. Only errors that match one of ruleErrs
// become one (asRule).
type ruleError struct {
	code string
	err  error
}

func (e ruleError) Error() string        { return e.err.Error() }
func (e ruleError) Code() string         { return e.code }
func (e ruleError) PublicDetail() string { return e.err.Error() }

var _ PublicError = ruleError{}

// asRule returns err as a PublicError when it is a rule refusal.
func asRule(err error) (PublicError, bool) {
	var (
		re *settings.RangeError
		le *tasks.LimitError
		ie *tasks.InputError
	)
	switch {
	case errors.Is(err, protocol.ErrInvalidAgentID):
		return ruleError{protocol.ErrInvalidValue, err}, true
	case errors.Is(err, messaging.ErrInvalidChannel):
		return ruleError{protocol.ErrInvalidValue, err}, true
	case errors.Is(err, messaging.ErrChannelLimit):
		return ruleError{protocol.CodeChannelLimit, err}, true
	case errors.As(err, &re):
		return ruleError{protocol.ErrOutOfRange, re}, true
	case errors.As(err, &le):
		return ruleError{protocol.ErrTooLarge, le}, true
	case errors.As(err, &ie):
		return ruleError{protocol.ErrInvalidValue, ie}, true
	case errors.Is(err, tasks.ErrQuota):
		return ruleError{protocol.CodeQueueQuota, err}, true
	}
	return nil, false
}

// ruleDetail is the client text of a rule refusal. Anything else (which
// a caller should never pass) gets a fixed text, so an unexpected error
// still cannot leak.
func ruleDetail(err error) string {
	if pe, ok := asRule(err); ok {
		return pe.PublicDetail()
	}
	return "invalid value"
}
