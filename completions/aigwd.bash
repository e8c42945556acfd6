# bash completion for aigwd(8)                                   -*- shell-script -*-
#
# Install as /usr/share/bash-completion/completions/aigwd, or source this file
# from ~/.bashrc.

_aigwd()
{
    local cur prev cmd i w
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    local commands="start stop reload health check version help"

    # The command is the first word after "aigwd".
    if ((COMP_CWORD == 1)); then
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "-h --help -v --version" -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
        fi
        return 0
    fi
    cmd=${COMP_WORDS[1]}

    # The value of an option: a file for -c, a directory for -p.
    case $cmd in
    start | stop | reload | health)
        case $prev in
        -c | --conf)
            type compopt &>/dev/null && compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return 0
            ;;
        -p | --prefix)
            type compopt &>/dev/null && compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -d -- "$cur")
            return 0
            ;;
        esac
        ;;
    esac

    # Options not given yet (each is accepted once; -c and --conf are one).
    local opts="" seen=" "
    for ((i = 2; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
        -c | --conf) seen+="-c --conf " ;;
        -p | --prefix) seen+="-p --prefix " ;;
        --daemon) seen+="--daemon " ;;
        esac
    done
    case $cmd in
    start) opts="-c --conf -p --prefix --daemon -h --help" ;;
    stop | reload | health) opts="-c --conf -p --prefix -h --help" ;;
    version) opts="-h --help" ;;
    check)
        # One FILE, and -h/--help.
        if [[ $cur == -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "-h --help" -- "$cur")
            return 0
        fi
        for ((i = 2; i < COMP_CWORD; i++)); do
            [[ ${COMP_WORDS[i]} != -* ]] && return 0
        done
        type compopt &>/dev/null && compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
        ;;
    *) return 0 ;;
    esac
    local o left=""
    for o in $opts; do
        [[ $seen == *" $o "* ]] || left+="$o "
    done
    mapfile -t COMPREPLY < <(compgen -W "$left" -- "$cur")
    return 0
}

complete -F _aigwd aigwd
