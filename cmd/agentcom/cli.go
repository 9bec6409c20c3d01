package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// command is one node of the command tree. Every subcommand is declared in
// this tree (see commands), and help, usage errors, "did you mean", --json
// and shell completion are all derived from it, so they cannot drift
// apart.
//
// A group has subs; a leaf has setup.
type command struct {
	name    string
	summary string
	// synopsis follows "agentcom <path>" in the usage line; "[flags]" is
	// added when the leaf has flags.
	synopsis string
	// about is printed under the usage line by --help.
	about string
	subs  []*command
	// setup declares the leaf's flags on in.fs and returns its body, which
	// receives the positional arguments. It is also called with an empty
	// environment to list the flags for help and completion, so it must
	// do nothing else: read the environment and build clients in the body.
	setup func(in *inv) runFunc
	// args bounds the number of positional arguments (max -1: any).
	args [2]int
	// noJSON marks the daemons (serve, sidecar), whose output is a log,
	// and the commands whose output is already a document of its own
	// (completion); every other leaf gets --json.
	noJSON bool
	hidden bool
	// rawArgs passes every argument to the body unparsed (__complete).
	rawArgs bool
	// choices are the values of the leaf's positional argument, for
	// completion.
	choices []string
	// defaultSub is the subcommand a group runs when given no command
	// ("agentcom agents" lists them).
	defaultSub string
}

type runFunc func(ctx context.Context, args []string) error

// inv is one invocation of a leaf: its flags, streams and output mode.
type inv struct {
	env    *cmdEnv
	cmd    *command
	path   string // "task submit"
	fs     *flag.FlagSet
	asJSON bool
	// choices are the values a flag takes, for completion.
	choices map[string][]string
}

// oneOf declares the values flag name takes; completion offers them.
func (in *inv) oneOf(name string, values ...string) {
	if in.choices == nil {
		in.choices = map[string][]string{}
	}
	in.choices[name] = values
}

// errUsage reports a command line that could not be used; the reason and
// the usage were already printed on stderr. Exit code 2.
var errUsage = errors.New("usage error")

// errHelpShown means help was printed on request. Exit code 0.
var errHelpShown = errors.New("help shown")

// hinted is an error with the fix a user can apply.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

func withHint(err error, format string, a ...any) error {
	return &hinted{err: err, hint: fmt.Sprintf(format, a...)}
}

// dispatch runs one command line and returns the process exit code:
// 0 success (help included), 1 the command failed, 2 the command line
// is wrong.
func dispatch(ctx context.Context, env *cmdEnv, args []string) int {
	root := commands()
	err := root.run(ctx, env, nil, args)
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	}
	name := "agentcom"
	var f *failed
	if errors.As(err, &f) {
		name, err = f.path, f.err
	}
	if errors.Is(err, errUsage) {
		return 2
	}
	msg, hint := explain(err)
	// Errors carry text from the hub: no control characters on the terminal.
	msg, hint = safe(msg), safe(hint)
	fmt.Fprintf(env.stderr, "%s: %s\n", name, msg)
	if hint != "" {
		fmt.Fprintf(env.stderr, "  hint: %s\n", hint)
	}
	return 1
}

// run walks the tree down to a leaf along args. path is the names so far.
func (c *command) run(ctx context.Context, env *cmdEnv, path []string, args []string) error {
	if c.setup != nil {
		return c.runLeaf(ctx, env, path, args)
	}
	if c.defaultSub != "" && (len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelpArg(args[0])) {
		sub := c.find(c.defaultSub)
		return sub.run(ctx, env, append(path, sub.name), args)
	}
	if len(args) == 0 {
		c.printGroupHelp(env.stderr, path)
		return errUsage
	}
	switch a := args[0]; {
	case isHelpArg(a):
		c.printGroupHelp(env.stdout, path)
		return errHelpShown
	case a == "help":
		return c.help(env, path, args[1:])
	case len(path) == 0 && (a == "--version" || a == "-version"):
		fmt.Fprintf(env.stdout, "agentcom %s\n", version)
		return nil
	case strings.HasPrefix(a, "-"):
		fmt.Fprintf(env.stderr, "%s: unknown flag %s; name a command first\n\n", cmdName(path), a)
		c.printGroupHelp(env.stderr, path)
		return errUsage
	}
	sub := c.find(args[0])
	if sub == nil {
		c.unknown(env, path, args[0])
		return errUsage
	}
	return sub.run(ctx, env, append(path, sub.name), args[1:])
}

// help handles "agentcom [group] help CMD...": the help of that command
// on stdout.
func (c *command) help(env *cmdEnv, path, args []string) error {
	node := c
	for _, a := range args {
		if node.setup != nil {
			break
		}
		sub := node.find(a)
		if sub == nil {
			node.unknown(env, path, a)
			return errUsage
		}
		node, path = sub, append(path, sub.name)
	}
	if node.setup != nil {
		node.printLeafHelp(env.stdout, path)
	} else {
		node.printGroupHelp(env.stdout, path)
	}
	return errHelpShown
}

func isHelpArg(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

func (c *command) find(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

// unknown reports a mistyped command with the nearest names.
func (c *command) unknown(env *cmdEnv, path []string, name string) {
	fmt.Fprintf(env.stderr, "%s: unknown command %q", cmdName(path), name)
	if near := c.suggest(name); len(near) > 0 {
		fmt.Fprintf(env.stderr, "; did you mean %s?", strings.Join(near, " or "))
	}
	fmt.Fprintf(env.stderr, "\nRun '%s --help' for the list of commands.\n", cmdName(path))
}

// suggest returns the visible subcommands within a small edit distance
// of name, or that start with it.
func (c *command) suggest(name string) []string {
	limit := 1
	if len(name) >= 4 {
		limit = 2
	}
	var out []string
	for _, s := range c.subs {
		if s.hidden {
			continue
		}
		if editDistance(name, s.name) <= limit || (len(name) >= 2 && strings.HasPrefix(s.name, name)) {
			out = append(out, s.name)
		}
	}
	return out
}

// editDistance is the optimal string alignment distance of a and b:
// insertions, deletions, substitutions and swaps of neighbours ("tsak"
// is one step from "task").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func cmdName(path []string) string {
	return strings.Join(append([]string{"agentcom"}, path...), " ")
}

// newInv builds a leaf's invocation and declares its flags.
func (c *command) newInv(env *cmdEnv, path []string) (*inv, runFunc) {
	in := &inv{env: env, cmd: c, path: strings.Join(path, " ")}
	in.fs = flag.NewFlagSet(cmdName(path), flag.ContinueOnError)
	// The flag package prints the parse error itself; the usage is ours.
	in.fs.SetOutput(env.stderr)
	in.fs.Usage = func() {}
	if !c.noJSON {
		in.fs.BoolVar(&in.asJSON, "json", false, "print JSON on stdout and nothing else there")
	}
	return in, c.setup(in)
}

func (c *command) runLeaf(ctx context.Context, env *cmdEnv, path, args []string) error {
	in, body := c.newInv(env, path)
	if c.rawArgs {
		return body(ctx, args)
	}
	pos, err := parseInterleaved(in.fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.printLeafHelp(env.stdout, path)
		return errHelpShown
	}
	if err != nil {
		if near := c.nearFlag(in, err); near != "" {
			fmt.Fprintf(env.stderr, "Did you mean --%s?\n", near)
		}
		fmt.Fprintf(env.stderr, "Run '%s --help' for usage.\n", cmdName(path))
		return errUsage
	}
	lo, hi := c.args[0], c.args[1]
	if len(pos) < lo || (hi >= 0 && len(pos) > hi) {
		switch {
		case hi == 0:
			return in.usagef("unexpected argument %q", pos[0])
		case len(pos) < lo:
			return in.usagef("missing argument: %s", c.synopsis)
		default:
			return in.usagef("too many arguments (%d); quote an argument that has spaces", len(pos))
		}
	}
	if err := body(ctx, pos); err != nil {
		return &failed{path: cmdName(path), err: err}
	}
	return nil
}

// failed is the error of a command that ran: it names the command.
type failed struct {
	path string
	err  error
}

func (f *failed) Error() string { return f.path + ": " + f.err.Error() }
func (f *failed) Unwrap() error { return f.err }

// nearFlag returns the flag closest to the undefined one err names, or "".
func (c *command) nearFlag(in *inv, err error) string {
	const prefix = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return ""
	}
	bad := strings.TrimLeft(strings.TrimPrefix(msg, prefix), "-")
	best, bestD := "", 3
	in.fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(bad, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
}

// parseInterleaved parses flags placed before or after the positional
// arguments ("submit 'desc' --wait" as well as "submit --wait 'desc'").
// "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at "--" and drops it: everything after is positional.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usagef reports a wrong command line: the reason, then how to get help.
func (in *inv) usagef(format string, a ...any) error {
	fmt.Fprintf(in.env.stderr, "%s: %s\n", cmdName(strings.Fields(in.path)), fmt.Sprintf(format, a...))
	fmt.Fprintf(in.env.stderr, "usage: %s\nRun '%s --help' for the flags.\n", in.cmd.usageLine(strings.Fields(in.path)), cmdName(strings.Fields(in.path)))
	return errUsage
}

// secret declares a flag whose value is a secret that may also come from
// the environment. The flag's default stays empty, so help and usage
// errors can never show the secret; the environment is read when the
// value is asked for.
func (in *inv) secret(name, envKey, usage string) func() string {
	v := in.fs.String(name, "", usage+" (env "+envKey+"; never shown)")
	return func() string {
		if *v != "" {
			return *v
		}
		return in.env.getenv(envKey)
	}
}

// emit prints v as JSON with --json, and through human otherwise.
func (in *inv) emit(v any, human func(p *printer)) error {
	if in.asJSON {
		return writeJSON(in.env.stdout, v)
	}
	human(in.printer())
	return nil
}

func (in *inv) printer() *printer {
	return &printer{w: in.env.stdout, color: in.env.colorOK(), now: time.Now()}
}

// writeJSON writes v as indented JSON; a json.RawMessage is re-indented.
func writeJSON(w io.Writer, v any) error {
	if raw, ok := v.(json.RawMessage); ok {
		var x any
		if json.Unmarshal(raw, &x) == nil {
			v = x
		}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func (c *command) usageLine(path []string) string {
	s := cmdName(path)
	if c.synopsis != "" {
		s += " " + c.synopsis
	}
	if c.setup != nil && c.hasFlags() {
		s += " [flags]"
	}
	return s
}

// flags lists the leaf's flags as declared, with an empty environment.
func (c *command) flags() []*flag.Flag {
	var out []*flag.Flag
	c.declared().fs.VisitAll(func(f *flag.Flag) { out = append(out, f) })
	return out
}

// declared is the leaf's invocation as declared, with an empty
// environment: its flags and their choices.
func (c *command) declared() *inv {
	env := &cmdEnv{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	in, _ := c.newInv(env, nil)
	return in
}

func (c *command) hasFlags() bool { return len(c.flags()) > 0 }

func (c *command) printLeafHelp(w io.Writer, path []string) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", c.usageLine(path), c.summary)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	fl := c.flags()
	if len(fl) == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	type line struct{ name, usage string }
	var lines []line
	width := 0
	for _, f := range fl {
		typ, usage := flag.UnquoteUsage(f)
		name := flagName(f)
		if typ != "" {
			name += " " + typ
		}
		if !isZeroDefault(f) {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		width = max(width, len(name))
		lines = append(lines, line{name, usage})
	}
	for _, l := range lines {
		fmt.Fprintf(w, "  %-*s  %s\n", width, l.name, l.usage)
	}
}

// flagName is how help shows a flag: -f for one letter, --name otherwise
// (both spellings work).
func flagName(f *flag.Flag) string {
	if len(f.Name) == 1 {
		return "-" + f.Name
	}
	return "--" + f.Name
}

func isZeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

func (c *command) printGroupHelp(w io.Writer, path []string) {
	if len(path) == 0 {
		fmt.Fprintln(w, "AgentCom: a coordination hub for fleets of AI coding agents.")
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "usage: %s <command> [flags]\n", cmdName(path))
	if c.summary != "" {
		fmt.Fprintf(w, "\n%s\n", c.summary)
	}
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	fmt.Fprintln(w, "\ncommands:")
	width := 0
	for _, s := range c.subs {
		width = max(width, len(s.name))
	}
	for _, s := range c.subs {
		if !s.hidden {
			fmt.Fprintf(w, "  %-*s  %s\n", width, s.name, s.summary)
		}
	}
	fmt.Fprintf(w, "\nRun '%s help <command>' or '%s <command> --help' for details.\n", cmdName(path), cmdName(path))
	if len(path) == 0 {
		fmt.Fprintln(w, "'agentcom --version' prints the version.")
	}
}

// visible returns the subcommands completion and help show.
func (c *command) visible() []*command {
	return slices.DeleteFunc(slices.Clone(c.subs), func(s *command) bool { return s.hidden })
}
