package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/agentcom/agentcom/internal/gitflow"
)

// runGit is the agent's git workflow: start-task, submit, status.
func runGit(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.stderr, "usage: agentcom git <command> [flags]\n\n"+
			"  start-task [TASK_ID] [--description D]   branch <agent>/<task id>-<slug> from a freshly fetched origin/main\n"+
			"  submit [--no-pr]                          push with --force-with-lease and open the PR with gh\n"+
			"  status                                    branch, commits ahead, uncommitted changes\n\n"+
			"Defaults come from the sidecar's wake environment: TASK_ID, TASK_DESCRIPTION, AGENT_ID, REPO_DIR, HUB_URL.\n"+
			"Every command takes --repo (default REPO_DIR or .), --base, --remote and --json.")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, rest := args[0], args[1:]
	fs := newFlagSet(env, "git "+sub, "[flags]")
	repoDir := fs.String("repo", envOr(env, "REPO_DIR", "."), "git work tree (env REPO_DIR)")
	base := fs.String("base", "main", "base branch")
	remote := fs.String("remote", "origin", "remote")
	asJSON := fs.Bool("json", false, "print the outcome as JSON")
	agent := fs.String("agent-id", env.getenv("AGENT_ID"), "agent id, the branch prefix (env AGENT_ID)")
	var desc, reviewer, prio, hubURL, gh *string
	var noPR *bool
	switch sub {
	case "start-task":
		desc = fs.String("description", env.getenv("TASK_DESCRIPTION"), "task description, for the branch slug (env TASK_DESCRIPTION)")
	case "submit":
		reviewer = fs.String("reviewer", "", "GitHub user to request a review from")
		prio = fs.String("priority", "", "priority label (default: the task's, or normal)")
		hubURL = fs.String("hub", envOr(env, "HUB_URL", envOr(env, "AGENTCOM_HUB", "")), "hub URL for the task link (env HUB_URL)")
		noPR = fs.Bool("no-pr", false, "push only")
		gh = fs.String("gh", "gh", "GitHub CLI binary")
	case "status":
	default:
		fmt.Fprintf(env.stderr, "agentcom git: unknown command %q\n", sub)
		return errUsage
	}
	pos, err := parseWithArgs(fs, rest)
	if err != nil {
		return err
	}
	repo, err := gitflow.New(*repoDir)
	if err != nil {
		return err
	}
	repo.Base, repo.Remote = *base, *remote
	if gh != nil {
		repo.GH = *gh
	}
	var out any
	switch sub {
	case "start-task":
		id := env.getenv("TASK_ID")
		if len(pos) == 1 {
			id = pos[0]
		}
		if id == "" || len(pos) > 1 {
			fmt.Fprintln(env.stderr, "agentcom git start-task: exactly one TASK_ID is required (or TASK_ID in the environment)")
			return errUsage
		}
		res, err := repo.StartTask(ctx, gitflow.StartRequest{AgentID: *agent, TaskID: id, Description: *desc})
		if err != nil {
			return err
		}
		out = res
		if !*asJSON {
			fmt.Fprintf(env.stdout, "on branch %s (from %s/%s at %s)\n", res.Branch, *remote, *base, res.BaseCommit)
			if len(res.Untracked) > 0 {
				fmt.Fprintf(env.stderr, "note: untracked files carried along: %s\n", strings.Join(res.Untracked, ", "))
			}
		}
	case "submit":
		res, err := repo.Submit(ctx, gitflow.SubmitRequest{AgentID: *agent, TaskID: env.getenv("TASK_ID"), Description: env.getenv("TASK_DESCRIPTION"),
			Priority: *prio, Reviewer: *reviewer, HubAPIURL: *hubURL, NoPR: *noPR})
		if err != nil {
			if res.Pushed && !*asJSON {
				fmt.Fprintf(env.stdout, "pushed %s (%d commits)\n", res.Branch, res.Commits)
			}
			return err
		}
		out = res
		if !*asJSON {
			fmt.Fprintf(env.stdout, "pushed %s (%d commits)\n", res.Branch, res.Commits)
			if res.PRURL != "" {
				fmt.Fprintf(env.stdout, "pull request: %s\n", res.PRURL)
			}
		}
	case "status":
		st, err := repo.Status(ctx)
		if err != nil {
			return err
		}
		out = st
		if !*asJSON {
			fmt.Fprintf(env.stdout, "branch:        %s\ncommits ahead: %d\nclean:         %v\n", st.Branch, st.CommitsAhead, st.IsClean)
			for _, f := range st.UncommittedChanges {
				fmt.Fprintf(env.stdout, "  modified:  %s\n", f)
			}
			for _, f := range st.Untracked {
				fmt.Fprintf(env.stdout, "  untracked: %s\n", f)
			}
			for _, s := range st.NonConventionalCommits {
				fmt.Fprintf(env.stdout, "  not a conventional commit: %s\n", s)
			}
			if st.DiffFromMain != "" {
				fmt.Fprintln(env.stdout, st.DiffFromMain)
			}
		}
	}
	if *asJSON {
		return printJSON(env, out)
	}
	return nil
}
