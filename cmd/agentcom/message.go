package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/client"
	"github.com/agentcom/agentcom/internal/messaging"
)

func messageCommand() *command {
	return &command{name: "message", summary: "send messages and read an agent's mailbox",
		about: "Messages are sent as the token's agent. A plain TEXT goes out as the payload {\"text\": TEXT},\n" +
			"as the original send.js does; --payload sends any JSON object instead.",
		subs: []*command{
			{name: "send", summary: "send a message to an agent, or to everyone with --broadcast", synopsis: "AGENT TEXT | --broadcast TEXT",
				args: [2]int{0, 2}, setup: messageSend},
			{name: "inbox", summary: "read an agent's mailbox (messages waiting for it)", setup: messageInbox},
			{name: "ack", summary: "delete an agent's mailbox messages up to a sequence number", synopsis: "SEQ",
				args: [2]int{1, 1}, setup: messageAck},
		}}
}

// payloadFlags are how a message's body is given: TEXT, or --payload.
type payloadFlags struct {
	kind, payload, replyTo *string
}

func (in *inv) payloadFlags() payloadFlags {
	return payloadFlags{
		kind:    in.fs.String("type", "chat", "message `KIND`: chat, request, response, status, alert..."),
		payload: in.fs.String("payload", "", "the payload as a `JSON` object, instead of TEXT"),
		replyTo: in.fs.String("reply-to", "", "`ID` of the message this answers (threads)"),
	}
}

// build returns the payload of text, or of --payload.
func (pf payloadFlags) build(in *inv, text []string) (map[string]any, error) {
	switch {
	case *pf.payload != "" && len(text) > 0:
		return nil, in.usagef("give TEXT or --payload, not both")
	case *pf.payload != "":
		var m map[string]any
		if err := json.Unmarshal([]byte(*pf.payload), &m); err != nil || m == nil {
			return nil, in.usagef("--payload must be a JSON object, e.g. '{\"text\":\"hi\"}'")
		}
		return m, nil
	case len(text) == 0 || strings.TrimSpace(text[0]) == "":
		return nil, in.usagef("missing the message TEXT (or --payload JSON)")
	}
	return map[string]any{"text": text[0]}, nil
}

func messageSend(in *inv) runFunc {
	api := in.api()
	broadcast := in.fs.Bool("broadcast", false, "send to every agent (online now, or from their mailbox later)")
	pf := in.payloadFlags()
	return func(ctx context.Context, pos []string) error {
		m := client.OutgoingMessage{Type: *pf.kind, ReplyTo: *pf.replyTo}
		if !*broadcast {
			if len(pos) == 0 {
				return in.usagef("name the AGENT to send to, or use --broadcast")
			}
			m.To, pos = pos[0], pos[1:]
		}
		if len(pos) > 1 {
			return in.usagef("too many arguments: quote the TEXT")
		}
		var err error
		if m.Payload, err = pf.build(in, pos); err != nil {
			return err
		}
		r, err := api.client().SendMessage(ctx, m)
		if client.IsNotFound(err) {
			return withHint(fmt.Errorf("no agent %q holds a token or is connected", m.To),
				"agentcom agents lists the connected agents; an operator makes a token with 'agentcom token create --agent %s'", m.To)
		}
		if err != nil {
			return err
		}
		return in.emit(r, func(p *printer) {
			to := m.To
			if to == "" {
				to = "everyone"
			}
			p.line("sent %s to %s", p.paint(bold, r.ID), to)
		})
	}
}

// mailboxAgent declares --agent for the mailbox commands. Without it
// (nor AGENTCOM_AGENT) the mailbox is the token's own agent, which the
// hub names at GET /api/whoami.
func (in *inv) mailboxAgent() func(context.Context, *client.Client) (string, error) {
	a := in.fs.String("agent", "", "whose mailbox: an `AGENT` id (env AGENTCOM_AGENT; default: the token's agent); the token must be that agent's or an admin token")
	return func(ctx context.Context, c *client.Client) (string, error) {
		if *a != "" {
			return *a, nil
		}
		if id := in.env.getenv("AGENTCOM_AGENT"); id != "" {
			return id, nil
		}
		me, err := c.WhoAmI(ctx)
		switch {
		case client.IsNotFound(err):
			return "", errNoAgent // a hub without /api/whoami
		case err != nil:
			return "", err
		case me.Role == string(auth.RoleViewer):
			return "", withHint(fmt.Errorf("the token is a viewer token (of %s), which has no mailbox", safe(me.AgentID)),
				"use the agent's own token, or an admin token with --agent NAME")
		}
		return me.AgentID, nil
	}
}

var errNoAgent = withHint(errors.New("which agent's mailbox? --agent is missing and the hub does not say whose the token is"),
	"pass --agent NAME or set AGENTCOM_AGENT (the agent your token belongs to)")

func messageInbox(in *inv) runFunc {
	api := in.api()
	agent := in.mailboxAgent()
	since := in.fs.Uint64("since", 0, "only messages with a sequence number above `SEQ`")
	ack := in.fs.Bool("ack", false, "delete the messages shown from the mailbox")
	return func(ctx context.Context, _ []string) error {
		c := api.client()
		id, err := agent(ctx, c)
		if err != nil {
			return err
		}
		mb, err := c.Mailbox(ctx, id, *since)
		if err != nil {
			return err
		}
		if *ack && mb.Count > 0 {
			if _, err := c.AckMailbox(ctx, id, mb.LastSeq); err != nil {
				return fmt.Errorf("messages read but not acknowledged: %w", err)
			}
		}
		return in.emit(mb, func(p *printer) {
			if mb.Count == 0 {
				p.line("no messages for %s", id)
				return
			}
			printMessages(p, mb.Messages, true)
			switch {
			case *ack:
				p.line("%s", p.paint(dim, fmt.Sprintf("acknowledged up to %d", mb.LastSeq)))
			default:
				p.line("%s", p.paint(dim, fmt.Sprintf("acknowledge them: agentcom message ack %d --agent %s", mb.LastSeq, id)))
			}
		})
	}
}

func printMessages(p *printer, msgs []client.Message, withSeq bool) {
	rows := make([][]cell, 0, len(msgs))
	for _, m := range msgs {
		row := []cell{}
		if withSeq {
			row = append(row, txt(strconv.FormatUint(m.Seq, 10)))
		}
		to := m.ToText()
		if to == "" {
			to = "broadcast"
		}
		row = append(row, txt(p.ago(m.Timestamp)), styled(m.From, bold), txt(to), txt(m.TypeText()), txt(oneLine(m.Text(), 70)))
		rows = append(rows, row)
	}
	header := []string{"WHEN", "FROM", "TO", "TYPE", "MESSAGE"}
	if withSeq {
		header = append([]string{"SEQ"}, header...)
	}
	p.table(header, rows)
}

func messageAck(in *inv) runFunc {
	api := in.api()
	agent := in.mailboxAgent()
	return func(ctx context.Context, pos []string) error {
		seq, err := strconv.ParseUint(pos[0], 10, 64)
		if err != nil {
			return in.usagef("SEQ must be a message sequence number (see agentcom message inbox)")
		}
		c := api.client()
		id, err := agent(ctx, c)
		if err != nil {
			return err
		}
		r, err := c.AckMailbox(ctx, id, seq)
		if err != nil {
			return err
		}
		return in.emit(r, func(p *printer) { p.line("acknowledged %s's messages up to %d", id, r.UpTo) })
	}
}

func channelCommand() *command {
	return &command{name: "channel", summary: "list, create, publish to, read and subscribe to channels",
		subs: []*command{
			{name: "list", summary: "list channels", setup: channelList},
			{name: "show", summary: "a channel and its subscribers", synopsis: "CHANNEL", args: [2]int{1, 1}, setup: channelShow},
			{name: "create", summary: "create a channel", synopsis: "CHANNEL", args: [2]int{1, 1}, setup: channelCreate},
			{name: "publish", summary: "publish a message on a channel", synopsis: "CHANNEL TEXT", args: [2]int{1, 2}, setup: channelPublish},
			{name: "history", summary: "a channel's recent messages; --follow keeps printing new ones", synopsis: "CHANNEL",
				args: [2]int{1, 1}, setup: channelHistory},
			{name: "subscribe", summary: "subscribe the token's agent: the channel's messages reach its mailbox", synopsis: "CHANNEL",
				args: [2]int{1, 1}, setup: channelSubscribe(true)},
			{name: "unsubscribe", summary: "unsubscribe the token's agent", synopsis: "CHANNEL",
				args: [2]int{1, 1}, setup: channelSubscribe(false)},
		}}
}

func channelList(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, _ []string) error {
		chs, err := api.client().Channels(ctx)
		if err != nil {
			return err
		}
		if chs == nil {
			chs = []client.Channel{}
		}
		return in.emit(chs, func(p *printer) {
			if len(chs) == 0 {
				p.line("no channels; create one: agentcom channel create NAME")
				return
			}
			rows := make([][]cell, 0, len(chs))
			for _, ch := range chs {
				rows = append(rows, []cell{styled(ch.Name, bold), txt(strconv.Itoa(ch.SubscriberCount)), txt(p.ago(ch.CreatedAt)), txt(oneLine(ch.Description, 60))})
			}
			p.table([]string{"CHANNEL", "SUBSCRIBERS", "CREATED", "DESCRIPTION"}, rows)
		})
	}
}

// channelNotFound adds the fix to a 404 on a channel route.
func channelNotFound(err error, name string) error {
	if client.IsNotFound(err) {
		return withHint(fmt.Errorf("no channel %q on the hub", name), "agentcom channel list shows the channels; agentcom channel create %s makes it", name)
	}
	return err
}

func channelShow(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, pos []string) error {
		ch, err := api.client().Channel(ctx, pos[0])
		if err != nil {
			return channelNotFound(err, pos[0])
		}
		return in.emit(ch, func(p *printer) {
			p.kv([]field{kvs("channel", ch.Name, bold), kv("description", orDash(ch.Description)),
				kv("created", p.when(ch.CreatedAt)+" by "+orDash(ch.CreatedBy)),
				kv("subscribers", fmt.Sprintf("%d %s", ch.SubscriberCount, strings.Join(ch.Subscribers, ", ")))})
		})
	}
}

func channelCreate(in *inv) runFunc {
	api := in.api()
	desc := in.fs.String("description", "", "what the channel is for (`TEXT`)")
	return func(ctx context.Context, pos []string) error {
		r, err := api.client().CreateChannel(ctx, pos[0], *desc)
		if client.IsConflict(err) {
			return withHint(fmt.Errorf("channel %q already exists", pos[0]), "agentcom channel subscribe %s joins it", pos[0])
		}
		if err != nil {
			return err
		}
		return in.emit(r, func(p *printer) { p.line("created channel %s", p.paint(bold, r.Channel)) })
	}
}

func channelPublish(in *inv) runFunc {
	api := in.api()
	pf := in.payloadFlags()
	return func(ctx context.Context, pos []string) error {
		payload, err := pf.build(in, pos[1:])
		if err != nil {
			return err
		}
		r, err := api.client().Publish(ctx, pos[0], client.ChannelPost{Type: *pf.kind, Payload: payload, ReplyTo: *pf.replyTo})
		if err != nil {
			return channelNotFound(err, pos[0])
		}
		return in.emit(r, func(p *printer) { p.line("published on %s (seq %d)", pos[0], r.Seq) })
	}
}

// followPoll is how often channel history --follow asks for new entries.
const followPoll = time.Second

func channelHistory(in *inv) runFunc {
	api := in.api()
	limit := in.fs.Int("limit", 20, fmt.Sprintf("at most `N` messages, the newest (the hub keeps %d per channel)", messaging.ChannelHistoryCap))
	since := in.fs.Uint64("since", 0, "only messages after sequence number `SEQ`")
	follow := in.fs.Bool("follow", false, "keep printing new messages until interrupted (with --json, one JSON object per line)")
	return func(ctx context.Context, pos []string) error {
		name := pos[0]
		c := api.client()
		entries, err := c.ChannelHistory(ctx, name, *limit, *since)
		if err != nil {
			return channelNotFound(err, name)
		}
		if entries == nil {
			entries = []client.ChannelEntry{}
		}
		if !*follow {
			return in.emit(entries, func(p *printer) {
				if len(entries) == 0 {
					p.line("no messages on %s", name)
					return
				}
				printEntries(p, entries, true)
			})
		}
		p := in.printer()
		last := *since
		header := true
		outage := ""
		tick := time.NewTicker(followPoll)
		defer tick.Stop()
		for {
			for _, e := range entries {
				if in.asJSON {
					b, _ := json.Marshal(e)
					fmt.Fprintln(in.env.stdout, string(b))
				}
				last = max(last, e.Seq)
			}
			if !in.asJSON && len(entries) > 0 {
				p.now = time.Now()
				printEntries(p, entries, header)
				header = false
			}
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			// As many as the hub keeps, so a burst between two polls is
			// not cut to the default page.
			entries, err = c.ChannelHistory(ctx, name, messaging.ChannelHistoryCap, last)
			switch {
			case err != nil && ctx.Err() != nil:
				return nil
			case err != nil:
				if msg, _ := explain(err); msg != outage {
					fmt.Fprintf(in.env.stderr, "%s; still following\n", safe(msg))
					outage = msg
				}
			case outage != "":
				fmt.Fprintln(in.env.stderr, "the hub answers again")
				outage = ""
			}
		}
	}
}

func printEntries(p *printer, entries []client.ChannelEntry, header bool) {
	rows := make([][]cell, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, []cell{txt(strconv.FormatUint(e.Seq, 10)), txt(p.ago(e.Message.Timestamp)), styled(e.Message.From, bold),
			txt(e.Message.TypeText()), txt(oneLine(e.Message.Text(), 70))})
	}
	if header {
		p.table([]string{"SEQ", "WHEN", "FROM", "TYPE", "MESSAGE"}, rows)
		return
	}
	// Follow-up batches keep the columns of the first batch only roughly;
	// a table per batch keeps each line readable.
	for _, r := range rows {
		parts := make([]string, len(r))
		for i, cl := range r {
			parts[i] = p.paint(cl.style, safe(cl.text))
		}
		p.line("%s", strings.Join(parts, "  "))
	}
}

func channelSubscribe(on bool) func(in *inv) runFunc {
	return func(in *inv) runFunc {
		api := in.api()
		return func(ctx context.Context, pos []string) error {
			c := api.client()
			call, verb := c.Subscribe, "subscribed to"
			if !on {
				call, verb = c.Unsubscribe, "unsubscribed from"
			}
			r, err := call(ctx, pos[0])
			if err != nil {
				return channelNotFound(err, pos[0])
			}
			return in.emit(r, func(p *printer) {
				if r.Status == "already_subscribed" {
					p.line("already subscribed to %s", pos[0])
					return
				}
				p.line("%s %s", verb, pos[0])
			})
		}
	}
}
