package messaging

import (
	"fmt"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/store"
)

// Composite keys. A mailbox record's key is the agent id, one NUL byte and
// the 8-byte sequence number; a channel history record's key is the
// channel name, NUL and the sequence number. Neither agent ids
// (protocol.CheckAgentID) nor channel names (NormalizeChannel) may contain
// NUL, and both are checked here, at the key layer, so the range of one
// owner's keys never contains another owner's: "a2" owns exactly the keys
// "a2\x00" + 8 bytes. Records written before the rule, by ids that did
// contain NUL (for example "a2\x00", whose keys start "a2\x00\x00"), still
// sort inside a valid owner's prefix range; scanOwned skips them because
// their key is longer than prefix + 8 bytes. The format is the one earlier
// versions wrote, so existing mailboxes and histories read unchanged.

// mailboxPrefix is agent's key prefix; an id breaking the rule has none.
func mailboxPrefix(agent string) ([]byte, error) {
	if err := protocol.CheckAgentID(agent); err != nil {
		return nil, err
	}
	return append([]byte(agent), 0), nil
}

// channelPrefix is a normalized channel name's key prefix.
func channelPrefix(name string) ([]byte, error) {
	if err := checkChannelName(name); err != nil {
		return nil, err
	}
	return append([]byte(name), 0), nil
}

// scanOwned calls fn for every record whose key is prefix followed by one
// sequence number, in sequence order.
func scanOwned(tx *store.Tx, prefix []byte, fn func(k, v []byte) error) error {
	return tx.Scan(prefix, func(k, v []byte) error {
		if len(k) != len(prefix)+8 {
			return nil
		}
		return fn(k, v)
	})
}

// checkChannelName accepts a name as NormalizeChannel leaves it, non-empty:
// only a-z 0-9 _ -, so never NUL. Channels made before names were limited
// to MaxChannelNameLen (Create enforces it) keep working.
func checkChannelName(name string) error {
	if name == "" || NormalizeChannel(name) != name {
		return fmt.Errorf("%w: %q (want 1 to %d characters from a-z 0-9 _ -)", ErrInvalidChannel, name, MaxChannelNameLen)
	}
	return nil
}
