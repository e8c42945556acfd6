# fish completion for aigwd(8).
#
# Install as aigwd.fish in a directory of $fish_complete_path, for example
# ~/.config/fish/completions/aigwd.fish.

set -l aigwd_commands start stop reload health check version help

complete -c aigwd -f

# The command.
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a start -d 'Start aigwd (in the foreground unless --daemon)'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a stop -d 'Stop the aigwd running in the prefix'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a reload -d 'Re-read the configuration and certificates'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a health -d 'Tell whether aigwd is running in the prefix'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a check -d 'Validate a configuration file'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a version -d 'Print the version'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a help -d 'List the commands'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -s h -l help -d 'List the commands'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -s v -l version -d 'Print the version'

# Options of start, stop, reload and health.
complete -c aigwd -n "__fish_seen_subcommand_from start stop reload health" -s c -l conf -r -F -d 'Configuration file'
complete -c aigwd -n "__fish_seen_subcommand_from start stop reload health" -s p -l prefix -x -a '(__fish_complete_directories)' -d 'Prefix directory'
complete -c aigwd -n "__fish_seen_subcommand_from start" -l daemon -d 'Run in the background; return once listening'

# check FILE.
complete -c aigwd -n "__fish_seen_subcommand_from check" -F

# Every command's help.
complete -c aigwd -n "__fish_seen_subcommand_from start stop reload health check version" -s h -l help -d 'Show help for the command'
