package messaging

import (
	"encoding/json"
	"fmt"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/agentcom/agentcom/internal/storage"
)

// Agent ids (protocol.CheckAgentID) and channel names (NormalizeChannel)
// key mailboxes and channel histories in the stores; both are checked
// here before any store sees them, so an id breaking the rule never gets
// a mailbox. (The bolt driver's key layout relies on neither holding NUL;
// records written before the rule by ids that did are skipped there.)

// checkAgent refuses an id breaking the agent-id rule.
func checkAgent(agent string) error { return protocol.CheckAgentID(agent) }

// checkChannelName accepts a name as NormalizeChannel leaves it, non-empty:
// only a-z 0-9 _ -, so never NUL. Channels made before names were limited
// to MaxChannelNameLen (Create enforces it) keep working.
func checkChannelName(name string) error {
	if name == "" || NormalizeChannel(name) != name {
		return fmt.Errorf("%w: %q (want 1 to %d characters from a-z 0-9 _ -)", ErrInvalidChannel, name, MaxChannelNameLen)
	}
	return nil
}

// toRow converts a message to the stores' row: its JSON encoding and the
// columns history filters read.
func toRow(m Message) (storage.MessageRow, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return storage.MessageRow{}, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	to, _ := m.To.(string)
	channel, _ := m.Payload["channel"].(string)
	return storage.MessageRow{ID: m.ID, From: m.From, To: to, Channel: channel, ReplyTo: m.ReplyToID(),
		Timestamp: m.Timestamp, Body: b}, nil
}

// copiesOf encodes one mailbox copy of m per agent.
func copiesOf(m Message, agents []string) ([]storage.MailboxCopy, error) {
	if len(agents) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	out := make([]storage.MailboxCopy, len(agents))
	for i, a := range agents {
		out[i] = storage.MailboxCopy{Agent: a, Body: b}
	}
	return out, nil
}

// decodeEntries turns stored entries into messages with their numbers.
func decodeEntries(es []storage.Entry) ([]WithSeq, error) {
	out := make([]WithSeq, 0, len(es))
	for _, e := range es {
		var m Message
		if err := json.Unmarshal(e.Body, &m); err != nil {
			return nil, fmt.Errorf("decode stored message %d: %w", e.Seq, err)
		}
		out = append(out, WithSeq{Message: m, Seq: e.Seq})
	}
	return out, nil
}
