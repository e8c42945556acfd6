# bash completion for aigwctl(1)                                 -*- shell-script -*-
#
# Install as /usr/share/bash-completion/completions/aigwctl, or source this
# file from ~/.bashrc.

# Index of the word that starts the colon-split run ending at word $1 (bash
# breaks "http://h:8001" into "http" ":" "//h" ":" "8001").
_aigwctl_run_start()
{
    local k=$1
    while ((k > 1)) && [[ ${COMP_WORDS[k]} == : || ${COMP_WORDS[k - 1]} == : ]]; do
        ((k--))
    done
    echo "$k"
}

_aigwctl()
{
    local cur i w start have_cmd="" have_url=""
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}

    # The URL after --admin-url: the one in AIGW_ADMIN_URL and the default.
    start=$(_aigwctl_run_start "$COMP_CWORD")
    if ((start > 1)) && [[ ${COMP_WORDS[start - 1]} == --admin-url ]]; then
        local urls="http://127.0.0.1:8001" typed="" m
        [[ -n ${AIGW_ADMIN_URL-} ]] && urls="$AIGW_ADMIN_URL $urls"
        for ((i = start; i <= COMP_CWORD; i++)); do
            typed+=${COMP_WORDS[i]}
        done
        # Readline replaces only the text after the last ':', so offer that.
        local tail=${typed##*:}
        local before=$((${#typed} - ${#tail}))
        while IFS= read -r m; do
            [[ -n $m ]] && COMPREPLY+=("${m:before}")
        done < <(compgen -W "$urls" -- "$typed")
        return 0
    fi

    # Options and the command may come in any order; one command only.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
        --admin-url)
            have_url=1
            ((i++))
            # Skip the rest of a URL that bash split at ':'.
            while ((i + 1 < COMP_CWORD)) &&
                [[ ${COMP_WORDS[i + 1]} == : || ${COMP_WORDS[i]} == : ]]; do
                ((i++))
            done
            ;;
        -*) ;;
        *) have_cmd=1 ;;
        esac
    done

    local words=""
    if [[ $cur == -* || -n $have_cmd ]]; then
        [[ -z $have_url ]] && words="--admin-url "
        words+="-h --help"
    else
        words="status info version"
    fi
    mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
    return 0
}

complete -F _aigwctl aigwctl
