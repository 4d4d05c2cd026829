package main

import (
	"context"
	"fmt"
	"strings"
)

// bashCompletion completes subcommands, and flags by asking the command
// for its -h (so it never goes stale).
const bashCompletion = `# bash completion for swarmhost; load with: source <(swarmhost completion bash)
_swarmhost() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "%s" -- "$cur"))
		return
	fi
	if [[ $cur == -* ]]; then
		local flags
		flags=$("${COMP_WORDS[0]}" "${COMP_WORDS[1]}" -h 2>&1 | sed -n 's/^  -\([a-zA-Z0-9-]*\).*/--\1/p')
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
		return
	fi
	COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o default -F _swarmhost swarmhost
`

func runCompletion(_ context.Context, args []string, s stdio) int {
	if len(args) != 1 || args[0] != "bash" {
		fmt.Fprintln(s.err, "usage: swarmhost completion bash   (then: source <(swarmhost completion bash))")
		return 2
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	fmt.Fprintf(s.out, bashCompletion, strings.Join(names, " ")+" help")
	return 0
}
