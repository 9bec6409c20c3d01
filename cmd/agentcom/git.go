package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/agentcom/agentcom/internal/gitflow"
)

// gitCommand is the agent's git workflow: start-task, submit, status.
func gitCommand() *command {
	return &command{name: "git", summary: "the agent's git workflow: start-task, submit, status",
		about: "Defaults come from the sidecar's wake environment: TASK_ID, TASK_DESCRIPTION, AGENT_ID, REPO_DIR, HUB_URL.",
		subs: []*command{
			{name: "start-task", summary: "branch <agent>/<task id>-<slug> from a freshly fetched origin/main", synopsis: "[TASK_ID]",
				args: [2]int{0, 1}, setup: gitStartTask},
			{name: "submit", summary: "push with --force-with-lease and open the PR with gh", setup: gitSubmit},
			{name: "status", summary: "branch, commits ahead, uncommitted changes", setup: gitStatus},
		}}
}

// gitRepo declares the flags every git command shares and opens the repo.
func gitRepo(in *inv) (agent *string, open func() (*gitflow.Repo, error)) {
	repoDir := in.fs.String("repo", "", "git work tree (env REPO_DIR, else .)")
	base := in.fs.String("base", "main", "base branch")
	remote := in.fs.String("remote", "origin", "remote")
	agent = in.fs.String("agent-id", "", "agent id, the branch prefix (env AGENT_ID)")
	return agent, func() (*gitflow.Repo, error) {
		if *agent == "" {
			*agent = in.env.getenv("AGENT_ID")
		}
		dir := *repoDir
		if dir == "" {
			dir = envOr(in.env, "REPO_DIR", ".")
		}
		repo, err := gitflow.New(dir)
		if err != nil {
			return nil, err
		}
		repo.Base, repo.Remote = *base, *remote
		return repo, nil
	}
}

func gitStartTask(in *inv) runFunc {
	agent, open := gitRepo(in)
	desc := in.fs.String("description", "", "task description, for the branch slug (env TASK_DESCRIPTION)")
	return func(ctx context.Context, pos []string) error {
		id := in.env.getenv("TASK_ID")
		if len(pos) == 1 {
			id = pos[0]
		}
		if id == "" {
			return in.usagef("exactly one TASK_ID is required (or TASK_ID in the environment)")
		}
		repo, err := open()
		if err != nil {
			return err
		}
		if *desc == "" {
			*desc = in.env.getenv("TASK_DESCRIPTION")
		}
		res, err := repo.StartTask(ctx, gitflow.StartRequest{AgentID: *agent, TaskID: id, Description: *desc})
		if err != nil {
			return err
		}
		return in.emit(res, func(p *printer) {
			p.line("on branch %s (from %s/%s at %s)", res.Branch, repo.Remote, repo.Base, res.BaseCommit)
			if len(res.Untracked) > 0 {
				fmt.Fprintf(in.env.stderr, "note: untracked files carried along: %s\n", strings.Join(res.Untracked, ", "))
			}
		})
	}
}

func gitSubmit(in *inv) runFunc {
	agent, open := gitRepo(in)
	reviewer := in.fs.String("reviewer", "", "GitHub user to request a review from")
	prio := in.fs.String("priority", "", "priority label (default: the task's, or normal)")
	hubURL := in.fs.String("hub", "", "hub URL for the task link (env HUB_URL, else AGENTCOM_HUB)")
	noPR := in.fs.Bool("no-pr", false, "push only")
	gh := in.fs.String("gh", "gh", "GitHub CLI binary")
	return func(ctx context.Context, _ []string) error {
		repo, err := open()
		if err != nil {
			return err
		}
		repo.GH = *gh
		hub := *hubURL
		if hub == "" {
			hub = envOr(in.env, "HUB_URL", in.env.getenv("AGENTCOM_HUB"))
		}
		res, err := repo.Submit(ctx, gitflow.SubmitRequest{AgentID: *agent, TaskID: in.env.getenv("TASK_ID"),
			Description: in.env.getenv("TASK_DESCRIPTION"), Priority: *prio, Reviewer: *reviewer, HubAPIURL: hub, NoPR: *noPR})
		if err != nil {
			if res.Pushed && !in.asJSON {
				fmt.Fprintf(in.env.stdout, "pushed %s (%d commits)\n", res.Branch, res.Commits)
			}
			return err
		}
		return in.emit(res, func(p *printer) {
			p.line("pushed %s (%d commits)", res.Branch, res.Commits)
			if res.PRURL != "" {
				p.line("pull request: %s", res.PRURL)
			}
		})
	}
}

func gitStatus(in *inv) runFunc {
	_, open := gitRepo(in)
	return func(ctx context.Context, _ []string) error {
		repo, err := open()
		if err != nil {
			return err
		}
		st, err := repo.Status(ctx)
		if err != nil {
			return err
		}
		return in.emit(st, func(p *printer) {
			p.kv([]field{kv("branch", st.Branch), kv("commits ahead", fmt.Sprint(st.CommitsAhead)), kv("clean", fmt.Sprint(st.IsClean))})
			for _, f := range st.UncommittedChanges {
				p.line("  modified:  %s", f)
			}
			for _, f := range st.Untracked {
				p.line("  untracked: %s", f)
			}
			for _, s := range st.NonConventionalCommits {
				p.line("  not a conventional commit: %s", s)
			}
			if st.DiffFromMain != "" {
				p.line("%s", st.DiffFromMain)
			}
		})
	}
}
