package gitflow

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var testEnv = []string{
	"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
	"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
	"GIT_CONFIG_NOSYSTEM=1", "HOME=" + os.TempDir(),
}

// sh runs git in dir for test setup.
func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), testEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// fixture makes a bare "origin" with one commit on main and a clone of it.
// It returns the clone and the bare repository.
func fixture(t *testing.T) (clone, origin string) {
	t.Helper()
	root := t.TempDir()
	origin = filepath.Join(root, "origin.git")
	seed := filepath.Join(root, "seed")
	clone = filepath.Join(root, "work")
	gitT(t, root, "init", "-q", "--bare", "-b", "main", origin)
	gitT(t, root, "init", "-q", "-b", "main", seed)
	writeFile(t, filepath.Join(seed, "README"), "hello\n")
	gitT(t, seed, "add", ".")
	gitT(t, seed, "commit", "-q", "-m", "chore: init")
	gitT(t, seed, "push", "-q", origin, "main")
	gitT(t, root, "clone", "-q", origin, clone)
	return clone, origin
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newRepo(t *testing.T, dir string) *Repo {
	t.Helper()
	r, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.Env = testEnv
	r.GH = filepath.Join(t.TempDir(), "no-gh-here")
	return r
}

func TestNaming(t *testing.T) {
	cases := []struct{ agent, task, desc, want string }{
		{"gcu-sleeper-service", "task-0123456789abcdef", "Fix login bug", "gcu/task-0123456789abcdef-fix-login-bug"},
		{"myagent-abc", "task-0123456789abcdef", "", "myagent/task-0123456789abcdef"},
		{"", "task-1", "Ünïcödé only ☃", "agent/task-1-ncd-only"},
		{"verylongagentname", "t 1; rm -rf /", "$(evil) `x` \"q\"", "verylong/t-1-rm-rf-evil-x-q"},
		{"a", "task-1", "日本語", "a/task-1"},
		{"a", "", "x", "a/task-x"},
	}
	for _, c := range cases {
		if got := BranchName(c.agent, c.task, c.desc); got != c.want {
			t.Errorf("BranchName(%q,%q,%q) = %q, want %q", c.agent, c.task, c.desc, got, c.want)
		}
	}
	if s := Slug(strings.Repeat("abc ", 30)); len(s) > 40 || strings.HasSuffix(s, "-") {
		t.Errorf("Slug too long or dangling dash: %q", s)
	}
	if got := TaskIDFromBranch("gcu/task-0123456789abcdef-fix"); got != "task-0123456789abcdef" {
		t.Errorf("TaskIDFromBranch = %q", got)
	}
	if got := TaskIDFromBranch("feature/x"); got != "" {
		t.Errorf("TaskIDFromBranch = %q", got)
	}
	if got := PRTitle(strings.Repeat("x", 70)); len(got) != 60 || !strings.HasSuffix(got, "...") {
		t.Errorf("PRTitle = %q", got)
	}
	if PRTitle("  ") != "agent task" {
		t.Error("empty title")
	}
	for s, want := range map[string]bool{"feat: x": true, "fix(api)!: y": true, "Fix: y": false, "chore:": false, "update stuff": false} {
		if IsConventional(s) != want {
			t.Errorf("IsConventional(%q) != %v", s, want)
		}
	}
	body := PRBody("gcu-x", "task-1", "do it", "high", "", "a | 1 +\n")
	for _, want := range []string{"## Task: task-1", "**Priority:** high", "http://localhost:4000/api/tasks/task-1", "a | 1 +"} {
		if !strings.Contains(body, want) {
			t.Errorf("PR body lacks %q:\n%s", want, body)
		}
	}
}

func TestStartTaskBranchesFromFreshOrigin(t *testing.T) {
	clone, origin := fixture(t)
	ctx := context.Background()

	// Someone else pushes to origin/main after the clone: start-task must
	// branch from that commit, not the stale local main.
	other := filepath.Join(t.TempDir(), "other")
	gitT(t, filepath.Dir(other), "clone", "-q", origin, other)
	writeFile(t, filepath.Join(other, "new.txt"), "x\n")
	gitT(t, other, "add", ".")
	gitT(t, other, "commit", "-q", "-m", "feat: upstream change")
	gitT(t, other, "push", "-q", "origin", "main")
	upstream := strings.TrimSpace(gitT(t, other, "rev-parse", "--short", "HEAD"))

	// An untracked file does not block.
	writeFile(t, filepath.Join(clone, "scratch.txt"), "tmp\n")
	r := newRepo(t, clone)
	res, err := r.StartTask(ctx, StartRequest{AgentID: "gcu-sleeper-service", TaskID: "task-0123456789abcdef", Description: "Fix login bug"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Branch != "gcu/task-0123456789abcdef-fix-login-bug" || res.BaseCommit != upstream {
		t.Fatalf("start = %+v, want base %s", res, upstream)
	}
	if len(res.Untracked) != 1 || res.Untracked[0] != "scratch.txt" {
		t.Errorf("untracked = %v", res.Untracked)
	}
	if b := strings.TrimSpace(gitT(t, clone, "rev-parse", "--abbrev-ref", "HEAD")); b != res.Branch {
		t.Errorf("HEAD on %q", b)
	}
	// Starting the same task again (a retry) resets the branch instead of
	// failing on the existing name.
	if _, err := r.StartTask(ctx, StartRequest{AgentID: "gcu-sleeper-service", TaskID: "task-0123456789abcdef", Description: "Fix login bug"}); err != nil {
		t.Fatalf("restart same task: %v", err)
	}
}

func TestStartTaskRefusesDirtyTree(t *testing.T) {
	clone, _ := fixture(t)
	writeFile(t, filepath.Join(clone, "README"), "changed\n")
	r := newRepo(t, clone)
	_, err := r.StartTask(context.Background(), StartRequest{AgentID: "a", TaskID: "task-1"})
	var de *DirtyError
	if !errors.Is(err, ErrDirtyTree) || !errors.As(err, &de) || len(de.Files) != 1 || de.Files[0] != "README" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "README") || !strings.Contains(err.Error(), "commit or stash") {
		t.Errorf("message not clear: %v", err)
	}
	if b := strings.TrimSpace(gitT(t, clone, "rev-parse", "--abbrev-ref", "HEAD")); b != "main" {
		t.Errorf("branch changed to %q", b)
	}
}

func TestNotARepoAndFetchFailure(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, t.TempDir())
	if _, err := r.StartTask(ctx, StartRequest{TaskID: "task-1"}); !errors.Is(err, ErrNotARepo) {
		t.Errorf("plain dir: %v", err)
	}
	r = newRepo(t, filepath.Join(t.TempDir(), "missing"))
	if _, err := r.Status(ctx); !errors.Is(err, ErrNotARepo) {
		t.Errorf("missing dir: %v", err)
	}
	clone, origin := fixture(t)
	if err := os.RemoveAll(origin); err != nil {
		t.Fatal(err)
	}
	r = newRepo(t, clone)
	_, err := r.StartTask(ctx, StartRequest{TaskID: "task-1"})
	if !errors.Is(err, ErrFetch) {
		t.Errorf("fetch from a missing origin: %v", err)
	}
}

func TestSubmitPushesAndNeedsGH(t *testing.T) {
	clone, origin := fixture(t)
	ctx := context.Background()
	r := newRepo(t, clone)

	// On main: refused.
	if _, err := r.Submit(ctx, SubmitRequest{}); !errors.Is(err, ErrOnBaseBranch) {
		t.Fatalf("submit on main: %v", err)
	}
	st, err := r.StartTask(ctx, StartRequest{AgentID: "gcu-x", TaskID: "task-00000000000000aa", Description: "Add file"})
	if err != nil {
		t.Fatal(err)
	}
	// No commits yet.
	if _, err := r.Submit(ctx, SubmitRequest{}); !errors.Is(err, ErrNoCommits) {
		t.Fatalf("submit without commits: %v", err)
	}
	writeFile(t, filepath.Join(clone, "a.txt"), "a\n")
	gitT(t, clone, "add", ".")
	gitT(t, clone, "commit", "-q", "-m", "feat: add a")
	// A dirty tracked file blocks the submit.
	writeFile(t, filepath.Join(clone, "a.txt"), "dirty\n")
	if _, err := r.Submit(ctx, SubmitRequest{}); !errors.Is(err, ErrDirtyTree) {
		t.Fatalf("dirty submit: %v", err)
	}
	gitT(t, clone, "checkout", "-q", "--", "a.txt")

	// gh is absent: the branch is pushed, then a clear error.
	res, err := r.Submit(ctx, SubmitRequest{})
	if !errors.Is(err, ErrGHMissing) || !res.Pushed || res.Branch != st.Branch || res.Commits != 1 {
		t.Fatalf("submit without gh = %+v, %v", res, err)
	}
	if !strings.Contains(err.Error(), "gh") || !strings.Contains(err.Error(), "pushed") {
		t.Errorf("error not clear: %v", err)
	}
	local := strings.TrimSpace(gitT(t, clone, "rev-parse", "HEAD"))
	remote := strings.TrimSpace(gitT(t, origin, "rev-parse", "refs/heads/"+st.Branch))
	if local != remote {
		t.Fatalf("origin has %s, local %s", remote, local)
	}

	// Amend and push again: --force-with-lease lets the rewrite through.
	gitT(t, clone, "commit", "-q", "--amend", "-m", "feat: add a (amended)")
	if _, err := r.Submit(ctx, SubmitRequest{NoPR: true}); err != nil {
		t.Fatalf("force-with-lease push after amend: %v", err)
	}
	// But someone else's push to the branch is not overwritten.
	other := filepath.Join(t.TempDir(), "other")
	gitT(t, filepath.Dir(other), "clone", "-q", "-b", st.Branch, origin, other)
	writeFile(t, filepath.Join(other, "b.txt"), "b\n")
	gitT(t, other, "add", ".")
	gitT(t, other, "commit", "-q", "-m", "feat: theirs")
	gitT(t, other, "push", "-q", "origin", st.Branch)
	gitT(t, clone, "commit", "-q", "--amend", "-m", "feat: add a (again)")
	// Submit fetches only the base, so the lease still expects our last
	// push and the foreign commit is not overwritten.
	_, err = r.Submit(ctx, SubmitRequest{NoPR: true})
	if !errors.Is(err, ErrPush) || !strings.Contains(err.Error(), "stale info") {
		t.Fatalf("push over a foreign commit: %v", err)
	}
	theirs := strings.TrimSpace(gitT(t, other, "rev-parse", "HEAD"))
	if got := strings.TrimSpace(gitT(t, origin, "rev-parse", "refs/heads/"+st.Branch)); got != theirs {
		t.Fatalf("origin branch at %s, want their %s", got, theirs)
	}
}

func TestSubmitWithFakeGH(t *testing.T) {
	clone, _ := fixture(t)
	ctx := context.Background()
	r := newRepo(t, clone)
	bin := t.TempDir()
	log := filepath.Join(bin, "gh.log")
	// A stand-in gh that logs its argv and answers like the real one.
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> " + log + "\n" +
		"case \"$1 $2\" in\n" +
		"  'auth status') exit 0 ;;\n" +
		"  'pr view') echo 'no pull requests found' >&2; exit 1 ;;\n" +
		"  'label create') exit 0 ;;\n" +
		"  'pr create') echo 'https://github.com/o/r/pull/7' ;;\n" +
		"esac\n"
	gh := filepath.Join(bin, "gh")
	if err := os.WriteFile(gh, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r.GH = gh
	if _, err := r.StartTask(ctx, StartRequest{AgentID: "gcu-x", TaskID: "task-00000000000000bb", Description: "Title with \"quotes\" and $(x)"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(clone, "c.txt"), "c\n")
	gitT(t, clone, "add", ".")
	gitT(t, clone, "commit", "-q", "-m", "fix: c")
	res, err := r.Submit(ctx, SubmitRequest{Reviewer: "rev", Priority: "high"})
	if err != nil || res.PRURL != "https://github.com/o/r/pull/7" {
		t.Fatalf("submit = %+v, %v", res, err)
	}
	calls, _ := os.ReadFile(log)
	s := string(calls)
	for _, want := range []string{"auth status", "label create agent:gcu --force", "label create priority:high --force",
		"pr create --base main --head gcu/task-00000000000000bb-title-with-quotes-and-x --title Title with \"quotes\" and $(x) --body-file",
		"--label agent:gcu --label priority:high --reviewer rev"} {
		if !strings.Contains(s, want) {
			t.Errorf("gh calls lack %q:\n%s", want, s)
		}
	}
	// The PR body file is not left in the repository.
	if st, err := r.Status(ctx); err != nil || !st.IsClean {
		t.Errorf("status after submit = %+v, %v", st, err)
	}
}

func TestGHNotLoggedIn(t *testing.T) {
	clone, _ := fixture(t)
	r := newRepo(t, clone)
	gh := filepath.Join(t.TempDir(), "gh")
	if err := os.WriteFile(gh, []byte("#!/bin/sh\necho 'You are not logged into any GitHub hosts.' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.GH = gh
	err := r.CheckGH(context.Background())
	if !errors.Is(err, ErrGHNotLoggedIn) || !strings.Contains(err.Error(), "gh auth login") {
		t.Fatalf("err = %v", err)
	}
}

func TestStatus(t *testing.T) {
	clone, _ := fixture(t)
	ctx := context.Background()
	r := newRepo(t, clone)
	if _, err := r.StartTask(ctx, StartRequest{AgentID: "a", TaskID: "task-1"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(clone, "x.txt"), "x\n")
	gitT(t, clone, "add", ".")
	gitT(t, clone, "commit", "-q", "-m", "did things")
	writeFile(t, filepath.Join(clone, "y.txt"), "y\n")
	gitT(t, clone, "add", ".")
	gitT(t, clone, "commit", "-q", "-m", "feat: y")
	writeFile(t, filepath.Join(clone, "README"), "edited\n")
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Branch != "a/task-1" || st.CommitsAhead != 2 || st.IsClean || len(st.UncommittedChanges) != 1 ||
		len(st.NonConventionalCommits) != 1 || st.NonConventionalCommits[0] != "did things" || !strings.Contains(st.DiffFromMain, "x.txt") {
		t.Fatalf("status = %+v", st)
	}
}

// FuzzBranchName checks that any agent id, task id and description (all
// outside input) give a branch name made of safe characters only.
func FuzzBranchName(f *testing.F) {
	f.Add("gcu-sleeper-service", "task-0123456789abcdef", "Fix login bug")
	f.Add("", "", "")
	f.Add("../..", "-x-", "$(rm -rf /)\n`x`")
	f.Add("ünï", "task/../../x", "日本語 text")
	safe := regexp.MustCompile(`^[a-z0-9]{1,8}/[A-Za-z0-9_][A-Za-z0-9_-]*$`)
	f.Fuzz(func(t *testing.T, agent, task, desc string) {
		b := BranchName(agent, task, desc)
		if !safe.MatchString(b) || strings.HasSuffix(b, "-") || strings.Contains(b, "--") && !strings.Contains(task, "--") {
			t.Fatalf("BranchName(%q,%q,%q) = %q", agent, task, desc, b)
		}
		if s := Slug(desc); len(s) > 40 {
			t.Fatalf("Slug too long: %q", s)
		}
	})
}
