package protocol

import (
	"errors"
	"fmt"
)

// MaxAgentIDLen is the longest agent id, in bytes (every allowed
// character is one byte).
const MaxAgentIDLen = 128

// AgentIDRule is the agent-id rule as errors and the README state it.
const AgentIDRule = "1 to 128 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit, not \"broadcast\""

// ErrInvalidAgentID is wrapped by every CheckAgentID failure.
var ErrInvalidAgentID = errors.New("invalid agent id")

// CheckAgentID enforces the one rule every agent id follows wherever it
// enters the hub: token creation and import, registration, identify,
// message recipients, mailbox routes, and the sidecar or onboard files
// named after it. The character set keeps ids safe as file names, unit
// names and path segments, and it excludes the byte (NUL) that separates
// an id from the rest of a storage key, so no id's key range can contain
// another's. "broadcast" is reserved: as a recipient it means everyone.
func CheckAgentID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty (want %s)", ErrInvalidAgentID, AgentIDRule)
	case len(id) > MaxAgentIDLen:
		return fmt.Errorf("%w: %d characters, more than %d", ErrInvalidAgentID, len(id), MaxAgentIDLen)
	case id == BroadcastRecipient:
		return fmt.Errorf("%w: %q is reserved", ErrInvalidAgentID, id)
	case !isAlnum(id[0]):
		return fmt.Errorf("%w: must start with a letter or digit (want %s)", ErrInvalidAgentID, AgentIDRule)
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; !isAlnum(b) && b != '.' && b != '_' && b != '-' {
			return fmt.Errorf("%w: character %q at byte %d is not allowed (want %s)", ErrInvalidAgentID, b, i, AgentIDRule)
		}
	}
	return nil
}

// CheckRecipient accepts an agent id or BroadcastRecipient.
func CheckRecipient(to string) error {
	if to == BroadcastRecipient {
		return nil
	}
	return CheckAgentID(to)
}

// BroadcastRecipient is the message recipient that means every agent.
const BroadcastRecipient = "broadcast"

func isAlnum(b byte) bool {
	return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
}

// check applies the format to a string value; the empty format accepts
// anything.
func (f Format) check(s string) error {
	switch f {
	case FormatAgentID:
		return CheckAgentID(s)
	case FormatRecipient:
		return CheckRecipient(s)
	}
	return nil
}
