package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Shell completion. The scripts are thin: each asks the binary itself
// (the hidden command __complete) for the candidates of the word being
// typed, and the binary reads them from its own help texts (the commands'
// usage lines and flag lists), so completion never drifts from the flags
// a command really has and needs no table of its own.
//
// __complete never runs a command: it asks for help only, with -h right
// after a path of words each of which the help of the path before it
// lists as a subcommand. So `agentg approve ID -<TAB>` asks
// `agentg approve -h`, never `agentg approve ID -h` (which would approve).

// completeCommand is the hidden command the scripts call:
// agentg __complete WORDS... (the words after "agentg", the last being
// the one typed so far, possibly empty).
const completeCommand = "__complete"

func runCompletion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("completion", "bash|zsh|fish", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	script, ok := completionScripts[fs.Arg(0)]
	if !ok {
		return fmt.Errorf("no completion for shell %q: bash, zsh or fish", fs.Arg(0))
	}
	_, err := io.WriteString(stdout, script)
	return err
}

// completionScripts are the scripts by shell; each is loaded as its
// comment says.
var completionScripts = map[string]string{
	"bash": `# agentg completion for bash. Load it with:
#   source <(agentg completion bash)
# or save it as /etc/bash_completion.d/agentg.
_agentg() {
	local IFS=$'\n'
	COMPREPLY=($(agentg __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
	if [ ${#COMPREPLY[@]} -eq 0 ]; then
		COMPREPLY=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}"))
	fi
}
complete -F _agentg agentg
`,
	"zsh": `# agentg completion for zsh. Load it with:
#   source <(agentg completion zsh)
# (after compinit), or save it as _agentg in a directory of $fpath.
_agentg() {
	local -a c
	c=("${(@f)$(agentg __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	if (( ${#c} )) && [[ -n $c[1] ]]; then
		compadd -a c
	else
		_files
	fi
}
compdef _agentg agentg
`,
	"fish": `# agentg completion for fish. Load it with:
#   agentg completion fish | source
# or save it as ~/.config/fish/completions/agentg.fish.
complete -c agentg -f -a '(agentg __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`,
}

// complete writes the candidates for the last of words, one per line.
func complete(words []string, out io.Writer) {
	if len(words) == 0 {
		words = []string{""}
	}
	typed := words[len(words)-1]
	var cands []string
	if len(words) == 1 {
		for _, c := range commands() {
			cands = append(cands, c.name)
		}
		cands = append(cands, "--help", "--version")
	} else {
		path, help := helpPath(words[:len(words)-1])
		if strings.HasPrefix(typed, "-") {
			cands = flagNames(help)
		} else if len(path) == len(words)-1 {
			// Right after the path: the subcommands it lists, if any.
			cands = subcommands(help, path)
		}
	}
	for _, c := range cands {
		if strings.HasPrefix(c, typed) {
			fmt.Fprintln(out, c)
		}
	}
}

// helpPath follows words while each is a subcommand the help of the path
// before it lists, and returns that path and its help text.
func helpPath(words []string) (path []string, help string) {
	if !isCommand(words[0]) {
		return nil, ""
	}
	path = words[:1]
	help = helpOf(path)
	for _, w := range words[1:] {
		if !contains(subcommands(help, path), w) {
			break
		}
		path = append(path, w)
		help = helpOf(path)
	}
	return path, help
}

func isCommand(name string) bool {
	for _, c := range commands() {
		if c.name == name {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// helpOf is what `agentg PATH... -h` prints.
func helpOf(path []string) string {
	var buf bytes.Buffer
	run(append(append([]string{}, path...), "-h"), io.Discard, &buf)
	return buf.String()
}

var (
	// flagLine is a line of flag.PrintDefaults: two spaces, a dash, the
	// name.
	flagLine = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9_.-]*)`)
	// subcommandLine is a line of a command's list of subcommands: two
	// spaces, the name, two or more spaces, what it does.
	subcommandLine = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s{2,}\S`)
	word           = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	// subcommandToken is a word of a usage line that names subcommands:
	// "init|export", "list", "|".
	subcommandToken = regexp.MustCompile(`^[a-z|-]+$`)
)

// flagNames are the flags a help text lists, written as the README
// writes them (--name).
func flagNames(help string) []string {
	var names []string
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
			names = append(names, "--"+m[1])
		}
	}
	return names
}

// subcommands are the subcommands a help text names: those of its usage
// line ("Usage: agentg ca init|export|show [flags]", "agentg oauth list |
// connect BINDING") and those its list before any "Flags:" gives.
func subcommands(help string, path []string) []string {
	var subs []string
	add := func(s string) {
		if word.MatchString(s) && !contains(subs, s) {
			subs = append(subs, s)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(help))
	usage := "Usage: agentg " + strings.Join(path, " ") + " "
	for sc.Scan() {
		line := sc.Text()
		if line == "Flags:" {
			break
		}
		if rest, ok := strings.CutPrefix(line, usage); ok {
			for _, tok := range strings.Fields(rest) {
				if !subcommandToken.MatchString(tok) {
					break
				}
				for _, s := range strings.Split(tok, "|") {
					add(s)
				}
			}
			continue
		}
		if m := subcommandLine.FindStringSubmatch(line); m != nil {
			add(m[1])
		}
	}
	return subs
}
