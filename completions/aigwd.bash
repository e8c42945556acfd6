# bash completion for aigwd(8)                                   -*- shell-script -*-
#
# Install as /usr/share/bash-completion/completions/aigwd, or source this file
# from ~/.bashrc.

# Files whose names end in .yml, .yaml or .json, and directories, matching $1.
_aigwd_declfiles()
{
    local f
    COMPREPLY=()
    type compopt &>/dev/null && compopt -o filenames 2>/dev/null
    while IFS= read -r f; do
        if [[ -d $f ]]; then
            COMPREPLY+=("$f")
        else
            case $f in
            *.yml | *.yaml | *.json) COMPREPLY+=("$f") ;;
            esac
        fi
    done < <(compgen -f -- "$1")
}

_aigwd()
{
    local cur prev cmd i w
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    local commands="start stop reload health check migrations config version help"

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
    start | stop | reload | health | migrations | config)
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

    # Options not given yet (each is accepted once; -c and --conf are one), and
    # the words that are not options or option values: for migrations and
    # config, the subcommand and then config's FILE.
    local opts="" seen=" " sub="" file="" skip=0
    for ((i = 2; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((skip)); then
            skip=0
            continue
        fi
        case $w in
        -c | --conf) seen+="-c --conf " skip=1 ;;
        -p | --prefix) seen+="-p --prefix " skip=1 ;;
        --daemon) seen+="--daemon " ;;
        -y | --yes) seen+="-y --yes " ;;
        -) [[ -z $sub ]] && sub=$w || file=$w ;;
        -*) ;;
        *) [[ -z $sub ]] && sub=$w || file=$w ;;
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
    migrations)
        # bootstrap|up|list|reset [--yes] [-c FILE] [-p PREFIX], in any order.
        if [[ -z $sub && $cur != -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "bootstrap up list reset" -- "$cur")
            return 0
        fi
        opts="-c --conf -p --prefix -h --help"
        [[ -z $sub || $sub == reset ]] && opts+=" -y --yes"
        ;;
    config)
        # init [FILE] | parse FILE | db_import FILE | db_export [FILE|-],
        # with -c FILE and -p PREFIX anywhere.
        if [[ -z $sub && $cur != -* ]]; then
            mapfile -t COMPREPLY < <(compgen -W "init parse db_import db_export" -- "$cur")
            return 0
        fi
        opts="-c --conf -p --prefix -h --help"
        if [[ -n $sub && -z $file ]]; then
            case $sub in
            parse | db_import | db-import)
                if [[ $cur != -* ]]; then
                    _aigwd_declfiles "$cur"
                    return 0
                fi
                ;;
            init | db_export | db-export)
                if [[ $cur != -* ]]; then
                    type compopt &>/dev/null && compopt -o filenames 2>/dev/null
                    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                    return 0
                fi
                # db_export writes to standard output for "-".
                [[ $sub != init ]] && opts+=" -"
                ;;
            esac
        fi
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
