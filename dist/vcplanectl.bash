# bash completion for vcplanectl: commands and options, and the names of connections, devices,
# calls and parties asked of the running daemon (at most a second; nothing when it is down).

_vcplanectl_ask() { # ARGS...: a vcplanectl command on the socket the line names
    timeout 1 vcplanectl ${_vcplanectl_socket:+--socket "$_vcplanectl_socket"} "$@" 2>/dev/null
}

_vcplanectl() {
    local cur prev words cword
    _init_completion || return

    local commands="status connections calls stats names port disconnect reload top shell"
    local i command="" sub="" _vcplanectl_socket=""
    for ((i = 1; i < cword; i++)); do
        case "${words[i]}" in
        -s | --socket) _vcplanectl_socket="${words[i + 1]}"; ((i++)) ;;
        -*) ;;
        *) if [[ -z $command ]]; then command=${words[i]}; elif [[ -z $sub ]]; then sub=${words[i]}; fi ;;
        esac
    done

    case "$prev" in
    -s | --socket) _filedir; return ;;
    --kind) COMPREPLY=($(compgen -W "connection call party service" -- "$cur")); return ;;
    -i | --interval) return ;;
    esac

    case "$command" in
    "")
        COMPREPLY=($(compgen -W "$commands -s --socket --json --help" -- "$cur")) ;;
    names)
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--kind --bare --help" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_vcplanectl_ask names '*' --bare)" -- "$cur"))
        fi ;;
    port)
        case "$sub" in
        "") COMPREPLY=($(compgen -W "attach detach --help" -- "$cur")) ;;
        detach) COMPREPLY=($(compgen -W "$(_vcplanectl_ask connections | awk 'NR > 1 { print $2 }')" -- "$cur")) ;;
        esac ;;
    disconnect)
        COMPREPLY=($(compgen -W "$(_vcplanectl_ask names '*' --kind connection --bare)" -- "$cur")) ;;
    reload)
        COMPREPLY=($(compgen -W "--dry-run --help" -- "$cur")) ;;
    top)
        COMPREPLY=($(compgen -W "--once --interval --help" -- "$cur")) ;;
    *)
        COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
    esac
}
complete -F _vcplanectl vcplanectl
