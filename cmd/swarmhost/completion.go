package main

import (
	"github.com/dwebswarm/dwebswarm-go/cmd/swarmhost/internal/hostconfig"

	"context"
	"fmt"
	"strings"
)

// The completion scripts complete subcommands, the values of --transport,
// --discovery, --validator (built-in plugin names), --kind (conformance)
// and --log-level, "key generate"/"key rotate" (file names for --key, --file and the
// key path), and flags by asking the command for its -h (so they
// never go stale). %[1]s is the subcommands, %[2]s the transports, %[3]s
// the discoveries, %[4]s the validators, %[5]s the kinds.

const bashCompletion = `# bash completion for swarmhost; load with: source <(swarmhost completion bash)
_swarmhost() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "%[1]s" -- "$cur"))
		return
	fi
	case $prev in
	--transport) COMPREPLY=($(compgen -W "%[2]s" -- "$cur")); return ;;
	--discovery) COMPREPLY=($(compgen -W "%[3]s" -- "$cur")); return ;;
	--validator) COMPREPLY=($(compgen -W "%[4]s" -- "$cur")); return ;;
	--kind) COMPREPLY=($(compgen -W "%[5]s" -- "$cur")); return ;;
	--log-level) COMPREPLY=($(compgen -W "debug info warn error" -- "$cur")); return ;;
	esac
	if [ "${COMP_WORDS[1]}" = completion ]; then
		COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur"))
		return
	fi
	if [ "${COMP_WORDS[1]}" = key ] && [ "$COMP_CWORD" -eq 2 ] && [[ $cur != -* ]]; then
		COMPREPLY=($(compgen -W "generate rotate" -- "$cur") $(compgen -f -- "$cur"))
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

const zshCompletion = `#compdef swarmhost
# zsh completion for swarmhost; load with: source <(swarmhost completion zsh)
_swarmhost() {
	local -a cmds flags
	cmds=(%[1]s)
	if (( CURRENT == 2 )); then
		compadd -a cmds
		return
	fi
	case ${words[CURRENT-1]} in
	--transport) compadd %[2]s; return ;;
	--discovery) compadd %[3]s; return ;;
	--validator) compadd %[4]s; return ;;
	--kind) compadd %[5]s; return ;;
	--log-level) compadd debug info warn error; return ;;
	esac
	if [[ ${words[2]} == completion ]]; then
		compadd bash zsh fish
		return
	fi
	if [[ ${words[2]} == key ]] && (( CURRENT == 3 )) && [[ ${words[CURRENT]} != -* ]]; then
		compadd generate rotate
		_files
		return
	fi
	if [[ ${words[CURRENT]} == -* ]]; then
		flags=(${(f)"$(${words[1]} ${words[2]} -h 2>&1 | sed -n 's/^  -\([a-zA-Z0-9-]*\).*/--\1/p')"})
		compadd -a flags
		return
	fi
	_files
}
compdef _swarmhost swarmhost
`

const fishCompletion = `# fish completion for swarmhost; load with: swarmhost completion fish | source
function __swarmhost_flags
	set -l cmd (commandline -opc)
	$cmd[1] $cmd[2] -h 2>&1 | sed -n 's/^  -\([a-zA-Z0-9-]*\).*/\1/p'
end
complete -c swarmhost -f -n __fish_use_subcommand -a "%[1]s"
complete -c swarmhost -f -n "__fish_seen_subcommand_from completion" -a "bash zsh fish"
complete -c swarmhost -n "__fish_seen_subcommand_from key; and not __fish_seen_subcommand_from generate rotate" -a "generate rotate"
complete -c swarmhost -f -n "not __fish_use_subcommand" -l transport -r -a "%[2]s"
complete -c swarmhost -f -n "not __fish_use_subcommand" -l discovery -r -a "%[3]s"
complete -c swarmhost -f -n "not __fish_use_subcommand" -l validator -r -a "%[4]s"
complete -c swarmhost -f -n "__fish_seen_subcommand_from conformance" -l kind -r -a "%[5]s"
complete -c swarmhost -f -n "not __fish_use_subcommand" -l log-level -r -a "debug info warn error"
complete -c swarmhost -n "not __fish_use_subcommand; and string match -q -- '-*' (commandline -ct)" -a "(__swarmhost_flags | sed 's/^/--/')"
`

const completionUsage = "usage: swarmhost completion bash|zsh|fish\n" +
	"  bash: source <(swarmhost completion bash)\n" +
	"  zsh:  source <(swarmhost completion zsh)\n" +
	"  fish: swarmhost completion fish | source"

func runCompletion(_ context.Context, args []string, s stdio) int {
	scripts := map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}
	if len(args) != 1 || scripts[args[0]] == "" {
		fmt.Fprintln(s.err, completionUsage)
		return 2
	}
	var cmds []string
	for _, c := range commands() {
		cmds = append(cmds, c.name)
	}
	fmt.Fprintf(s.out, scripts[args[0]], strings.Join(append(cmds, "help"), " "),
		spaced(hostconfig.KindTransport), spaced(hostconfig.KindDiscovery), spaced(hostconfig.KindValidator), "transport discovery validator")
	return 0
}

// spaced is the sorted names of a factory map, space-separated.
func spaced(k hostconfig.Kind) string { return strings.Join(hostconfig.BuiltinNames(k), " ") }
