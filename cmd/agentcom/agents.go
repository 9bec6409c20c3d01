package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/agentcom/agentcom/internal/client"
)

func agentsCommand() *command {
	return &command{name: "agents", summary: "the agents the hub knows: state, current task, timeline", defaultSub: "list",
		subs: []*command{
			{name: "list", summary: "every connected agent with its state and current task (the default)", setup: agentsList},
			{name: "show", summary: "one agent: state, current task, recent tasks and its timeline", synopsis: "AGENT",
				args: [2]int{1, 1}, setup: agentsShow},
		}}
}

// agentRow is one agent of agents list: presence merged with the
// scheduler's state.
type agentRow struct {
	AgentID       string   `json:"agent_id"`
	Name          string   `json:"name"`
	Status        string   `json:"status,omitempty"`
	State         string   `json:"fsm_state"`
	CurrentTaskID *string  `json:"current_task_id"`
	Capabilities  []string `json:"capabilities"`
	ConnectedAt   int64    `json:"connected_at"`
	LastHeard     int64    `json:"last_heard,omitempty"`
}

func agentsList(in *inv) runFunc {
	api := in.api()
	return func(ctx context.Context, _ []string) error {
		c := api.client()
		present, err := c.Agents(ctx)
		if err != nil {
			return err
		}
		rows := map[string]*agentRow{}
		for _, a := range present {
			rows[a.AgentID] = &agentRow{AgentID: a.AgentID, Name: a.Name, Status: a.Status, State: a.FSMState,
				Capabilities: a.Capabilities, ConnectedAt: a.ConnectedAt, LastHeard: a.LastSeen}
		}
		// The scheduler's view (current task) needs a token; without one
		// the public presence list is all there is.
		states, serr := c.AgentStates(ctx)
		if serr != nil && !client.IsUnauthorized(serr) {
			return serr
		}
		for _, s := range states {
			r, ok := rows[s.AgentID]
			if !ok {
				r = &agentRow{AgentID: s.AgentID, Name: s.Name, ConnectedAt: s.ConnectedAt}
				rows[s.AgentID] = r
			}
			r.State, r.CurrentTaskID = s.FSMState, s.CurrentTaskID
			r.LastHeard = max(r.LastHeard, s.LastHeard)
			if len(r.Capabilities) == 0 {
				for _, cp := range s.Capabilities {
					r.Capabilities = append(r.Capabilities, cp.Name)
				}
			}
		}
		list := make([]agentRow, 0, len(rows))
		for _, r := range rows {
			if r.Capabilities == nil {
				r.Capabilities = []string{}
			}
			list = append(list, *r)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].AgentID < list[j].AgentID })
		return in.emit(list, func(p *printer) {
			if len(list) == 0 {
				p.line("no agents connected; onboard one: agentcom onboard --hub %s", api.url())
				return
			}
			tr := make([][]cell, 0, len(list))
			for _, a := range list {
				tr = append(tr, []cell{styled(a.AgentID, bold), styled(orDash(a.State), statusStyle(a.State)), txt(orDash(deref(a.CurrentTaskID))),
					txt(orDash(strings.Join(a.Capabilities, ","))), txt(p.ago(a.ConnectedAt)), txt(p.ago(a.LastHeard))})
			}
			p.table([]string{"AGENT", "STATE", "TASK", "CAPABILITIES", "CONNECTED", "LAST HEARD"}, tr)
			if serr != nil {
				p.line("%s", p.paint(dim, "current tasks need a token: --token or AGENTCOM_TOKEN"))
			}
		})
	}
}

// agentDetail is what agents show prints with --json.
type agentDetail struct {
	Agent    client.AgentState      `json:"agent"`
	Tasks    []client.Task          `json:"tasks"`
	Timeline []client.TimelineEntry `json:"timeline"`
	// TimelineError says why the timeline is missing (it needs a viewer
	// or admin token on a hub reachable beyond loopback).
	TimelineError string `json:"timeline_error,omitempty"`
}

func agentsShow(in *inv) runFunc {
	api := in.api()
	limit := in.fs.Int("tasks", 10, "how many of its recent tasks to show")
	return func(ctx context.Context, pos []string) error {
		c := api.client()
		id := pos[0]
		st, err := c.AgentState(ctx, id)
		if client.IsNotFound(err) {
			return withHint(fmt.Errorf("agent %q is not connected to the hub", id), "agentcom agents lists the connected agents")
		}
		if err != nil {
			return err
		}
		d := agentDetail{Agent: st, Tasks: []client.Task{}, Timeline: []client.TimelineEntry{}}
		pg, err := c.ListTasks(ctx, client.TaskFilter{AssignedTo: id, Limit: *limit})
		if err != nil {
			return err
		}
		d.Tasks = append(d.Tasks, pg.Tasks...)
		tl, err := c.Timeline(ctx, id)
		switch {
		case client.IsUnauthorized(err):
			d.TimelineError = "the timeline needs a viewer or admin token"
		case err != nil:
			return err
		default:
			d.Timeline = append(d.Timeline, tl...)
		}
		return in.emit(d, func(p *printer) { printAgent(p, d) })
	}
}

func printAgent(p *printer, d agentDetail) {
	a := d.Agent
	caps := make([]string, len(a.Capabilities))
	for i, cp := range a.Capabilities {
		caps[i] = cp.Name
	}
	p.kv([]field{
		kvs("agent", a.AgentID, bold),
		kvs("state", a.FSMState, statusStyle(a.FSMState)),
		kv("current task", orDash(deref(a.CurrentTaskID))),
		kv("capabilities", orDash(strings.Join(caps, ", "))),
		kv("flags", orDash(strings.Trim(string(a.Flags), "[]\""))),
		kv("connected", p.when(a.ConnectedAt)),
		kv("last heard", p.ago(a.LastHeard)),
		kv("state since", p.ago(a.LastStateChange)),
	})
	if len(d.Tasks) > 0 {
		p.heading("tasks assigned to it")
		rows := make([][]cell, 0, len(d.Tasks))
		for _, t := range d.Tasks {
			rows = append(rows, []cell{txt(t.ID), styled(t.Status, statusStyle(t.Status)), txt(p.ago(t.UpdatedAt)), txt(oneLine(t.DescriptionText(), 60))})
		}
		p.table([]string{"ID", "STATUS", "UPDATED", "DESCRIPTION"}, rows)
	}
	p.heading("timeline (newest first)")
	if d.TimelineError != "" {
		p.line("%s", p.paint(dim, d.TimelineError))
		return
	}
	if len(d.Timeline) == 0 {
		p.line("%s", p.paint(dim, "nothing yet"))
		return
	}
	rows := make([][]cell, 0, len(d.Timeline))
	for _, e := range d.Timeline {
		rows = append(rows, []cell{txt(p.ago(e.Timestamp)), txt(e.Kind), txt(e.Event), txt(orDash(e.TaskID)), txt(oneLine(e.Detail, 60))})
	}
	p.table([]string{"WHEN", "KIND", "EVENT", "TASK", "DETAIL"}, rows)
}
