// Package gitflow is the agent-side git workflow: start a task branch from a
// freshly fetched base, push it with --force-with-lease and open a pull
// request with the GitHub CLI.
//
// Every git and gh call runs as an argument vector (never a shell string)
// under a context with a timeout, so callers such as the sidecar can run
// them on their own goroutine without blocking anything else.
package gitflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors callers test with errors.Is.
var (
	// ErrNotARepo: the directory is not inside a git work tree.
	ErrNotARepo = errors.New("not a git repository")
	// ErrDirtyTree: tracked files have uncommitted changes (a *DirtyError
	// carries the files).
	ErrDirtyTree = errors.New("working tree has uncommitted changes")
	// ErrOnBaseBranch: submit was run on the base branch (or detached HEAD).
	ErrOnBaseBranch = errors.New("not on a task branch")
	// ErrNoCommits: the task branch has no commits beyond the base.
	ErrNoCommits = errors.New("no commits to submit")
	// ErrFetch, ErrPush: the remote could not be reached or refused.
	ErrFetch = errors.New("git fetch failed")
	ErrPush  = errors.New("git push failed")
	// ErrGHMissing: the GitHub CLI is not installed.
	ErrGHMissing = errors.New("GitHub CLI (gh) not found in PATH: install it from https://cli.github.com and run 'gh auth login'")
	// ErrGHNotLoggedIn: gh is installed but not authenticated.
	ErrGHNotLoggedIn = errors.New("GitHub CLI (gh) is not logged in: run 'gh auth login'")
	// ErrPRCreate: gh refused to create the pull request.
	ErrPRCreate = errors.New("gh pr create failed")
)

// DirtyError lists the changed tracked files behind ErrDirtyTree.
type DirtyError struct {
	Op    string
	Files []string
}

func (e *DirtyError) Error() string {
	files := e.Files
	more := ""
	if len(files) > 10 {
		more = fmt.Sprintf(" and %d more", len(files)-10)
		files = files[:10]
	}
	return fmt.Sprintf("%s: %v: %s%s (commit or stash them first)", e.Op, ErrDirtyTree, strings.Join(files, ", "), more)
}

func (e *DirtyError) Unwrap() error { return ErrDirtyTree }

// CmdError is a git or gh command that failed; it wraps the sentinel of the
// step (ErrFetch, ErrPush...) when there is one.
type CmdError struct {
	Args   []string
	Stderr string
	Err    error // the exec error (exit status, timeout)
	kind   error
}

func (e *CmdError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	prefix := strings.Join(e.Args[:min(2, len(e.Args))], " ") + " failed"
	if e.kind != nil {
		prefix = e.kind.Error()
	}
	return prefix + ": " + msg
}

func (e *CmdError) Unwrap() []error {
	if e.kind != nil {
		return []error{e.kind, e.Err}
	}
	return []error{e.Err}
}

// Repo runs the workflow in one repository.
type Repo struct {
	// Dir is the work tree. It is made absolute by New.
	Dir string
	// Remote is the remote to fetch from and push to (default "origin").
	Remote string
	// Base is the branch task branches start from (default "main").
	Base string
	// Git and GH are the binaries (default "git" and "gh", looked up in PATH).
	Git, GH string
	// GitTimeout and GHTimeout bound each call (defaults 60 s and 120 s).
	GitTimeout, GHTimeout time.Duration
	// Env is added to the environment of every call.
	Env []string
}

// New returns a Repo for dir with the defaults filled in.
func New(dir string) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("repo dir %s: %w", dir, err)
	}
	return &Repo{Dir: abs}, nil
}

func (r *Repo) remote() string { return def(r.Remote, "origin") }
func (r *Repo) base() string   { return def(r.Base, "main") }
func (r *Repo) baseRef() string {
	return r.remote() + "/" + r.base()
}

// StartRequest names the task a branch is started for.
type StartRequest struct {
	AgentID     string
	TaskID      string
	Description string
}

// StartResult is what StartTask did.
type StartResult struct {
	Branch     string `json:"branch"`
	BaseCommit string `json:"base_commit"`
	RepoDir    string `json:"repo_dir"`
	// Untracked lists untracked files, which do not block the start.
	Untracked []string `json:"untracked,omitempty"`
}

// StartTask refuses a dirty tree, fetches the remote, and checks out the
// task branch from the fresh remote base. A branch left by an earlier
// attempt of the same task is reset to the base.
func (r *Repo) StartTask(ctx context.Context, req StartRequest) (StartResult, error) {
	if strings.TrimSpace(req.TaskID) == "" {
		return StartResult{}, errors.New("start-task: a task id is required")
	}
	if err := r.checkRepo(ctx); err != nil {
		return StartResult{}, err
	}
	tracked, untracked, err := r.changes(ctx)
	if err != nil {
		return StartResult{}, err
	}
	if len(tracked) > 0 {
		return StartResult{}, &DirtyError{Op: "start-task", Files: tracked}
	}
	if _, err := r.gitKind(ctx, ErrFetch, "fetch", "--prune", r.remote()); err != nil {
		return StartResult{}, err
	}
	branch := BranchName(req.AgentID, req.TaskID, req.Description)
	if _, err := r.git(ctx, "check-ref-format", "--branch", branch); err != nil {
		return StartResult{}, fmt.Errorf("start-task: invalid branch name %q: %w", branch, err)
	}
	if _, err := r.git(ctx, "checkout", "--no-track", "-B", branch, r.baseRef()); err != nil {
		return StartResult{}, fmt.Errorf("start-task: %w", err)
	}
	base, err := r.git(ctx, "rev-parse", "--short", "HEAD")
	if err != nil {
		return StartResult{}, err
	}
	// Remember the task on the branch so submit can title the PR.
	for k, v := range map[string]string{"agentcomTask": req.TaskID, "agentcomDescription": req.Description, "agentcomAgent": req.AgentID} {
		if _, err := r.git(ctx, "config", "--local", "branch."+branch+"."+k, v); err != nil {
			return StartResult{}, err
		}
	}
	return StartResult{Branch: branch, BaseCommit: strings.TrimSpace(base), RepoDir: r.Dir, Untracked: untracked}, nil
}

// SubmitRequest describes the pull request Submit opens. Empty fields are
// read from what StartTask remembered on the branch.
type SubmitRequest struct {
	AgentID     string
	TaskID      string
	Description string
	Priority    string
	Reviewer    string
	HubAPIURL   string
	// NoPR pushes the branch only.
	NoPR bool
}

// SubmitResult is what Submit did. Branch and Pushed are set as soon as the
// push succeeded, even when the pull request step then fails.
type SubmitResult struct {
	Branch  string `json:"branch"`
	Commits int    `json:"commits"`
	Pushed  bool   `json:"pushed"`
	PRURL   string `json:"pr_url,omitempty"`
	// PRExisted is true when a pull request for the branch was already open.
	PRExisted bool `json:"pr_existed,omitempty"`
}

// Submit pushes the current task branch with --force-with-lease and opens
// (or finds) its pull request with gh.
func (r *Repo) Submit(ctx context.Context, req SubmitRequest) (SubmitResult, error) {
	var res SubmitResult
	if err := r.checkRepo(ctx); err != nil {
		return res, err
	}
	branch, err := r.currentBranch(ctx)
	if err != nil {
		return res, err
	}
	if branch == "HEAD" || branch == r.base() || branch == "main" || branch == "master" {
		return res, fmt.Errorf("submit: %w: HEAD is %q; run 'agentcom git start-task' first", ErrOnBaseBranch, branch)
	}
	res.Branch = branch
	tracked, _, err := r.changes(ctx)
	if err != nil {
		return res, err
	}
	if len(tracked) > 0 {
		return res, &DirtyError{Op: "submit", Files: tracked}
	}
	r.fillFromBranch(ctx, branch, &req)
	// Fetch the base only: fetching the task branch too would move its
	// remote-tracking ref and so defeat --force-with-lease, which must
	// refuse to overwrite commits someone else pushed to the branch.
	if _, err := r.gitKind(ctx, ErrFetch, "fetch", r.remote(), "+refs/heads/"+r.base()+":refs/remotes/"+r.baseRef()); err != nil {
		return res, err
	}
	n, err := r.commitsAhead(ctx)
	if err != nil {
		return res, err
	}
	res.Commits = n
	if n == 0 {
		return res, fmt.Errorf("submit: %w: %s has nothing beyond %s", ErrNoCommits, branch, r.baseRef())
	}
	if _, err := r.gitKind(ctx, ErrPush, "push", "--force-with-lease", "--set-upstream", r.remote(), branch); err != nil {
		return res, err
	}
	res.Pushed = true
	if req.NoPR {
		return res, nil
	}
	if err := r.CheckGH(ctx); err != nil {
		return res, fmt.Errorf("submit: branch %s pushed, but no pull request: %w", branch, err)
	}
	if url, err := r.gh(ctx, "pr", "view", branch, "--json", "url", "--jq", ".url"); err == nil && strings.TrimSpace(url) != "" {
		res.PRURL, res.PRExisted = strings.TrimSpace(url), true
		return res, nil
	}
	url, err := r.createPR(ctx, branch, req)
	if err != nil {
		return res, err
	}
	res.PRURL = url
	return res, nil
}

// CheckGH reports ErrGHMissing or ErrGHNotLoggedIn when gh cannot open a
// pull request.
func (r *Repo) CheckGH(ctx context.Context) error {
	if _, err := exec.LookPath(def(r.GH, "gh")); err != nil {
		return ErrGHMissing
	}
	if _, err := r.gh(ctx, "auth", "status"); err != nil {
		var ce *CmdError
		if errors.As(err, &ce) && ce.Stderr != "" {
			return fmt.Errorf("%w (%s)", ErrGHNotLoggedIn, firstLine(ce.Stderr))
		}
		return ErrGHNotLoggedIn
	}
	return nil
}

func (r *Repo) createPR(ctx context.Context, branch string, req SubmitRequest) (string, error) {
	short := ShortAgent(req.AgentID)
	prio := def(req.Priority, "normal")
	var labels []string
	for _, l := range []string{"agent:" + short, "priority:" + prio} {
		// A label that cannot be created is left off rather than making
		// gh pr create fail.
		if _, err := r.gh(ctx, "label", "create", l, "--force"); err == nil {
			labels = append(labels, l)
		}
	}
	diffstat, _ := r.git(ctx, "diff", "--stat", r.baseRef()+"...HEAD")
	body, err := os.CreateTemp("", "agentcom-pr-body-*.md")
	if err != nil {
		return "", fmt.Errorf("submit: pr body: %w", err)
	}
	defer os.Remove(body.Name())
	_, werr := body.WriteString(PRBody(req.AgentID, req.TaskID, req.Description, prio, req.HubAPIURL, diffstat))
	if cerr := body.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", fmt.Errorf("submit: pr body: %w", werr)
	}
	args := []string{"pr", "create", "--base", r.base(), "--head", branch, "--title", PRTitle(req.Description), "--body-file", body.Name()}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	if req.Reviewer != "" {
		args = append(args, "--reviewer", req.Reviewer)
	}
	out, err := r.ghKind(ctx, ErrPRCreate, args...)
	if err != nil {
		return "", err
	}
	return lastLine(out), nil
}

// Status is the state of the current branch relative to the base.
type Status struct {
	Branch                 string   `json:"branch"`
	CommitsAhead           int      `json:"commits_ahead"`
	DiffFromMain           string   `json:"diff_from_main"`
	UncommittedChanges     []string `json:"uncommitted_changes"`
	Untracked              []string `json:"untracked"`
	IsClean                bool     `json:"is_clean"`
	NonConventionalCommits []string `json:"non_conventional_commits"`
}

// Status reports the branch, its commits beyond the (last fetched) base,
// uncommitted changes and commit subjects that break the conventional
// commit rule. It does not fetch.
func (r *Repo) Status(ctx context.Context) (Status, error) {
	var st Status
	if err := r.checkRepo(ctx); err != nil {
		return st, err
	}
	var err error
	if st.Branch, err = r.currentBranch(ctx); err != nil {
		return st, err
	}
	if st.UncommittedChanges, st.Untracked, err = r.changes(ctx); err != nil {
		return st, err
	}
	st.IsClean = len(st.UncommittedChanges) == 0 && len(st.Untracked) == 0
	st.NonConventionalCommits = []string{}
	if _, err := r.git(ctx, "rev-parse", "--verify", "--quiet", r.baseRef()); err != nil {
		// No remote base known yet: nothing to compare with.
		return st, nil
	}
	if st.CommitsAhead, err = r.commitsAhead(ctx); err != nil {
		return st, err
	}
	diff, _ := r.git(ctx, "diff", "--stat", r.baseRef()+"...HEAD")
	st.DiffFromMain = strings.TrimRight(diff, "\n")
	subjects, err := r.git(ctx, "log", "--format=%s", r.baseRef()+"..HEAD")
	if err != nil {
		return st, err
	}
	for _, s := range strings.Split(strings.TrimRight(subjects, "\n"), "\n") {
		if s != "" && !IsConventional(s) {
			st.NonConventionalCommits = append(st.NonConventionalCommits, s)
		}
	}
	return st, nil
}

func (r *Repo) checkRepo(ctx context.Context) error {
	if fi, err := os.Stat(r.Dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: %s does not exist", ErrNotARepo, r.Dir)
	}
	out, err := r.git(ctx, "rev-parse", "--is-inside-work-tree")
	if err != nil || strings.TrimSpace(out) != "true" {
		return fmt.Errorf("%w: %s (clone the repository there first)", ErrNotARepo, r.Dir)
	}
	return nil
}

func (r *Repo) currentBranch(ctx context.Context) (string, error) {
	out, err := r.git(ctx, "rev-parse", "--abbrev-ref", "HEAD")
	return strings.TrimSpace(out), err
}

func (r *Repo) commitsAhead(ctx context.Context) (int, error) {
	out, err := r.git(ctx, "rev-list", "--count", r.baseRef()+"..HEAD")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return 0, fmt.Errorf("git rev-list: unexpected output %q", out)
	}
	return n, nil
}

// changes splits `git status --porcelain` into changed tracked files and
// untracked files.
func (r *Repo) changes(ctx context.Context) (tracked, untracked []string, err error) {
	out, err := r.git(ctx, "status", "--porcelain=v1", "-z")
	if err != nil {
		return nil, nil, err
	}
	entries := strings.Split(out, "\x00")
	for i := 0; i < len(entries); i++ {
		e := entries[i]
		if len(e) < 4 {
			continue
		}
		code, name := e[:2], e[3:]
		if code == "??" {
			untracked = append(untracked, name)
			continue
		}
		tracked = append(tracked, name)
		if code[0] == 'R' || code[0] == 'C' {
			i++ // the rename source follows as its own entry
		}
	}
	return tracked, untracked, nil
}

// fillFromBranch fills empty request fields from the branch config that
// StartTask wrote.
func (r *Repo) fillFromBranch(ctx context.Context, branch string, req *SubmitRequest) {
	get := func(k string) string {
		out, err := r.git(ctx, "config", "--local", "--get", "branch."+branch+"."+k)
		if err != nil {
			return ""
		}
		return strings.TrimRight(out, "\n")
	}
	if req.TaskID == "" {
		req.TaskID = def(get("agentcomTask"), TaskIDFromBranch(branch))
	}
	if req.Description == "" {
		req.Description = get("agentcomDescription")
	}
	if req.AgentID == "" {
		req.AgentID = get("agentcomAgent")
	}
}

func (r *Repo) git(ctx context.Context, args ...string) (string, error) {
	return r.run(ctx, def(r.Git, "git"), durDef(r.GitTimeout, 60*time.Second), nil, args)
}

func (r *Repo) gitKind(ctx context.Context, kind error, args ...string) (string, error) {
	return r.run(ctx, def(r.Git, "git"), durDef(r.GitTimeout, 60*time.Second), kind, args)
}

func (r *Repo) gh(ctx context.Context, args ...string) (string, error) {
	return r.run(ctx, def(r.GH, "gh"), durDef(r.GHTimeout, 120*time.Second), nil, args)
}

func (r *Repo) ghKind(ctx context.Context, kind error, args ...string) (string, error) {
	return r.run(ctx, def(r.GH, "gh"), durDef(r.GHTimeout, 120*time.Second), kind, args)
}

// run executes bin with args in the repository, never through a shell.
func (r *Repo) run(ctx context.Context, bin string, timeout time.Duration, kind error, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GH_PROMPT_DISABLED=1", "GCM_INTERACTIVE=never", "LC_ALL=C")
	cmd.Env = append(cmd.Env, r.Env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		return stdout.String(), &CmdError{Args: append([]string{filepath.Base(bin)}, args...), Stderr: stderr.String(), Err: err, kind: kind}
	}
	return stdout.String(), nil
}

// ShortAgent is the agent prefix of branch names: the agent id up to its
// first "-", lowercased, reduced to [a-z0-9], at most 8 characters
// ("gcu-sleeper-service" gives "gcu"); "agent" when nothing is left.
func ShortAgent(agentID string) string {
	first, _, _ := strings.Cut(agentID, "-")
	var b strings.Builder
	for _, c := range strings.ToLower(first) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		}
		if b.Len() == 8 {
			break
		}
	}
	if b.Len() == 0 {
		return "agent"
	}
	return b.String()
}

// Slug turns a description into at most 40 characters of [a-z0-9-].
// Non-ASCII text gives an empty slug.
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		switch {
		case (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'):
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(c)
		case c == ' ' || c == '\t' || c == '\n' || c == '-' || c == '_' || c == '/' || c == '.':
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	out := b.String()
	if len(out) > 40 {
		out = out[:40]
	}
	return strings.TrimRight(out, "-")
}

var (
	taskIDClean = regexp.MustCompile(`[^A-Za-z0-9_-]+`)
	dashes      = regexp.MustCompile(`-{2,}`)
)

// BranchName is "<short agent>/<task id>[-<slug>]". The task id makes it
// unique per task, so two tasks with the same description never collide.
func BranchName(agentID, taskID, description string) string {
	id := strings.Trim(dashes.ReplaceAllString(taskIDClean.ReplaceAllString(taskID, "-"), "-"), "-")
	if id == "" {
		id = "task"
	}
	name := ShortAgent(agentID) + "/" + id
	if s := Slug(description); s != "" {
		name += "-" + s
	}
	return name
}

var branchTaskID = regexp.MustCompile(`(?:^|/)(task-[0-9a-f]{16})(?:-|$)`)

// TaskIDFromBranch extracts a hub task id ("task-" + 16 hex) from a branch
// name made by BranchName, or "" when there is none.
func TaskIDFromBranch(branch string) string {
	m := branchTaskID.FindStringSubmatch(branch)
	if m == nil {
		return ""
	}
	return m[1]
}

// PRTitle is the description, cut to 60 characters ("agent task" if empty).
func PRTitle(description string) string {
	t := strings.Join(strings.Fields(description), " ")
	if t == "" {
		return "agent task"
	}
	if r := []rune(t); len(r) > 60 {
		return string(r[:57]) + "..."
	}
	return t
}

// PRBody renders the pull request description.
func PRBody(agentID, taskID, description, priority, hubAPIURL, diffstat string) string {
	hub := strings.TrimRight(def(hubAPIURL, "http://localhost:4000"), "/")
	changes := strings.TrimRight(diffstat, "\n")
	if strings.TrimSpace(changes) == "" {
		changes = "No changes"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Task: %s\n\n", taskID)
	fmt.Fprintf(&b, "**Agent:** %s\n**Priority:** %s\n**Task Link:** %s/api/tasks/%s\n\n", agentID, priority, hub, taskID)
	fmt.Fprintf(&b, "### Description\n\n%s\n\n", description)
	fmt.Fprintf(&b, "### Changes\n\n```\n%s\n```\n\n---\n", changes)
	fmt.Fprintf(&b, "_Submitted by agentcom git | Agent: %s | Task: %s_\n", agentID, taskID)
	return b.String()
}

var conventional = regexp.MustCompile(`^(feat|fix|docs|style|refactor|test|chore|perf|ci|build|revert)(\([A-Za-z0-9._-]+\))?!?:\s+\S`)

// IsConventional reports whether a commit subject follows the
// conventional-commit rule ("fix(api): message").
func IsConventional(subject string) bool { return conventional.MatchString(subject) }

func def(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func durDef(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
