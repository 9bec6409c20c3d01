package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Shell completion: the scripts are thin; they call the hidden
// "agentcom __complete WORDS... CURRENT" command, which answers from the
// command tree, so completion always matches the binary it runs.

func completionCommand() *command {
	return &command{name: "completion", summary: "print the shell completion script: bash, zsh or fish",
		synopsis: "bash|zsh|fish", args: [2]int{1, 1}, noJSON: true, choices: []string{"bash", "zsh", "fish"},
		about: "bash:  source <(agentcom completion bash)          (or save it in /etc/bash_completion.d/agentcom)\n" +
			"zsh:   source <(agentcom completion zsh)           (or save it as _agentcom in a directory of $fpath)\n" +
			"fish:  agentcom completion fish > ~/.config/fish/completions/agentcom.fish",
		setup: func(in *inv) runFunc {
			return func(_ context.Context, pos []string) error {
				script, ok := completionScripts[pos[0]]
				if !ok {
					return in.usagef("unknown shell %q: use bash, zsh or fish", pos[0])
				}
				_, err := io.WriteString(in.env.stdout, script)
				return err
			}
		}}
}

var completionScripts = map[string]string{
	"bash": `# bash completion for agentcom
_agentcom() {
	local IFS=$'\n'
	local words=("${COMP_WORDS[@]:1:COMP_CWORD}")
	COMPREPLY=($(agentcom __complete "${words[@]}" 2>/dev/null | cut -f1))
}
complete -o default -F _agentcom agentcom
`,
	"zsh": `#compdef agentcom
# zsh completion for agentcom
_agentcom() {
	local -a lines cands
	lines=("${(@f)$(agentcom __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	local l
	for l in $lines; do
		[[ -n $l ]] && cands+=("${l%%$'\t'*}:${l#*$'\t'}")
	done
	if (( ${#cands} )); then
		_describe 'agentcom' cands
	else
		_files
	fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
	_agentcom "$@"
else
	compdef _agentcom agentcom
fi
`,
	"fish": `# fish completion for agentcom
function __agentcom_complete
	set -l words (commandline -opc)[2..-1]
	agentcom __complete $words (commandline -ct) 2>/dev/null
end
complete -c agentcom -f -a '(__agentcom_complete)'
`,
}

// completeCommand answers the completion scripts: the arguments are the
// words after "agentcom", the last one being the word under the cursor
// (possibly empty). It prints one candidate a line, "word<TAB>summary".
func completeCommand() *command {
	return &command{name: "__complete", summary: "completion candidates (used by the completion scripts)",
		args: [2]int{0, -1}, noJSON: true, hidden: true, rawArgs: true,
		setup: func(in *inv) runFunc {
			return func(_ context.Context, words []string) error {
				for _, cand := range complete(commands(), words) {
					fmt.Fprintln(in.env.stdout, cand)
				}
				return nil
			}
		}}
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// complete returns the candidates for the last of words.
func complete(root *command, words []string) []string {
	cur := ""
	if len(words) > 0 {
		cur, words = words[len(words)-1], words[:len(words)-1]
	}
	node := root
	for _, w := range words {
		if node.setup != nil {
			break
		}
		if w == "help" {
			continue
		}
		next := node.find(w)
		if next == nil {
			return nil
		}
		node = next
	}
	var out []string
	if node.setup == nil {
		for _, s := range node.visible() {
			if strings.HasPrefix(s.name, cur) {
				out = append(out, s.name+"\t"+s.summary)
			}
		}
		return out
	}
	// A leaf: the values of the flag before the word, when it has a
	// fixed set; its flags, when the word starts one. Other values and
	// positional arguments are left to the shell (files).
	in := node.declared()
	if len(words) > 0 {
		if prev := strings.TrimLeft(words[len(words)-1], "-"); strings.HasPrefix(words[len(words)-1], "-") {
			for _, v := range in.choices[prev] {
				if strings.HasPrefix(v, cur) {
					out = append(out, v)
				}
			}
			if in.fs.Lookup(prev) != nil && !isBoolFlag(in.fs.Lookup(prev)) {
				return out
			}
		}
	}
	if node.choices != nil && !strings.HasPrefix(cur, "-") {
		for _, v := range node.choices {
			if strings.HasPrefix(v, cur) {
				out = append(out, v)
			}
		}
		return out
	}
	if !strings.HasPrefix(cur, "-") {
		return nil
	}
	for _, f := range node.flags() {
		if name := flagName(f); strings.HasPrefix(name, cur) {
			_, usage := flag.UnquoteUsage(f)
			out = append(out, name+"\t"+oneLine(usage, 60))
		}
	}
	if strings.HasPrefix("--help", cur) {
		out = append(out, "--help\tshow the help")
	}
	return out
}
