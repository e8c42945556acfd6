# fish completion for aigwctl(1).
#
# Install as aigwctl.fish in a directory of $fish_complete_path, for example
# ~/.config/fish/completions/aigwctl.fish.

set -l aigwctl_commands status info version

function __aigwctl_admin_urls
    if set -q AIGW_ADMIN_URL; and test -n "$AIGW_ADMIN_URL"
        echo $AIGW_ADMIN_URL
    end
    echo http://127.0.0.1:8001
end

complete -c aigwctl -f

complete -c aigwctl -n "not __fish_seen_subcommand_from $aigwctl_commands" -a status -d "Show the node's /status (connections, database)"
complete -c aigwctl -n "not __fish_seen_subcommand_from $aigwctl_commands" -a info -d "Show the node's GET / (version, node id, configuration)"
complete -c aigwctl -n "not __fish_seen_subcommand_from $aigwctl_commands" -a version -d "Print the version of aigwctl"

complete -c aigwctl -n "not __fish_contains_opt admin-url" -l admin-url -x -a '(__aigwctl_admin_urls)' -d 'Admin API URL'
complete -c aigwctl -s h -l help -d 'Show help'
