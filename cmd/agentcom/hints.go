package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/protocol"
)

// explain turns an error into the line printed for it and a hint naming
// the fix, for the failures a user can do something about.
func explain(err error) (msg, hint string) {
	var h *hinted
	if errors.As(err, &h) {
		msg, inner := explain(h.err)
		if inner != "" && h.hint == "" {
			return msg, inner
		}
		return msg, h.hint
	}
	var un *client.UnreachableError
	if errors.As(err, &un) {
		return unreachable(un)
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		msg, hint := hubError(ce)
		// What the caller wrapped around the hub's answer ("lines
		// 201-300 refused, ...") says what it was doing; keep it.
		if outer, ok := strings.CutSuffix(err.Error(), ": "+ce.Error()); ok && outer != "" {
			msg = outer + ": " + msg
		}
		return msg, hint
	}
	return err.Error(), ""
}

func unreachable(un *client.UnreachableError) (string, string) {
	cause := un.Err
	var op *net.OpError
	if errors.As(cause, &op) {
		cause = op.Err
	}
	var dns *net.DNSError
	switch {
	case errors.Is(un.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach the hub at %s: connection refused", un.URL),
			fmt.Sprintf("is the hub running at %s? Start it with 'agentcom serve', or point --hub (env AGENTCOM_HUB) at it", un.URL)
	case errors.As(un.Err, &dns):
		return fmt.Sprintf("cannot reach the hub at %s: unknown host %s", un.URL, dns.Name),
			"check the host name in --hub (env AGENTCOM_HUB)"
	}
	return fmt.Sprintf("cannot reach the hub at %s: %v", un.URL, cause),
		fmt.Sprintf("is the hub running at %s, and reachable from here?", un.URL)
}

func hubError(ce *client.Error) (string, string) {
	code := ce.Code
	if code == "" {
		code = http.StatusText(ce.Status)
	}
	msg := fmt.Sprintf("the hub refused %s %s: %s (%d)", ce.Method, ce.Path, code, ce.Status)
	if d := ce.Field("detail"); d != "" {
		msg += ": " + strings.TrimPrefix(d, code+": ")
	}
	if fes := ce.FieldErrors(); fes != "" {
		msg += ": " + fes
	}
	switch ce.Status {
	case http.StatusUnauthorized:
		how := "an operator makes one with 'agentcom token create --agent NAME' (offline) or POST /admin/tokens"
		if !ce.SentToken {
			return msg, "this needs a token and none was given: pass --token or set AGENTCOM_TOKEN; " + how
		}
		return msg, "the token was refused (revoked, mistyped, or not this agent's): pass a valid token with --token or set AGENTCOM_TOKEN; " + how
	case http.StatusForbidden:
		return msg, "this token's role may not do that: use an admin token (agentcom token create --agent ops --admin)"
	case http.StatusTooManyRequests:
		if ce.Code == protocol.CodeQueueQuota {
			return msg, "this submitter holds as many unfinished tasks as the hub allows: wait for agents to work some off, cancel some, or raise the hub's limit (serve --max-queued-per-submitter)"
		}
		return msg, "the hub rate-limits callers; wait a moment and try again"
	}
	return msg, ""
}
