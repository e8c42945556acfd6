# fish completion for aigwd(8).
#
# Install as aigwd.fish in a directory of $fish_complete_path, for example
# ~/.config/fish/completions/aigwd.fish.

set -l aigwd_commands start stop reload health check migrations config version help
set -l aigwd_migrations bootstrap up list reset

# True when the command line holds no subcommand of `aigwd migrations` or
# `aigwd config` yet (the value of -c or -p does not count).
function __aigwd_needs_sub
    set -l args (commandline -opc)
    set -e args[1..2]
    set -l skip 0
    for a in $args
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $a
            case -c --conf -p --prefix
                set skip 1
            case '-?*'
            case '*'
                return 1
        end
    end
    return 0
end

# True when `aigwd config SUB` is followed by no FILE yet, SUB being one of $argv.
function __aigwd_config_file_for
    set -l args (commandline -opc)
    set -e args[1..2]
    set -l skip 0
    set -l words
    for a in $args
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $a
            case -c --conf -p --prefix
                set skip 1
            case '-?*'
            case '*'
                set -a words $a
        end
    end
    test (count $words) -eq 1; and contains -- $words[1] $argv
end

# Files whose names end in .yml, .yaml or .json, and directories.
function __aigwd_declfiles
    set -l tok (commandline -ct)
    for f in (__fish_complete_path $tok | string replace -r '\t.*' '')
        switch $f
            case '*/' '*.yml' '*.yaml' '*.json'
                echo $f
        end
    end
end

complete -c aigwd -f

# The command.
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a start -d 'Start aigwd (in the foreground unless --daemon)'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a stop -d 'Stop the aigwd running in the prefix'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a reload -d 'Re-read the configuration and certificates'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a health -d 'Tell whether aigwd is running in the prefix'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a check -d 'Validate a configuration file'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a migrations -d 'Prepare or upgrade the database'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a config -d 'Use declarative configuration files (kong.yml)'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a version -d 'Print the version'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -a help -d 'List the commands'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -s h -l help -d 'List the commands'
complete -c aigwd -n "not __fish_seen_subcommand_from $aigwd_commands" -s v -l version -d 'Print the version'

# Options of start, stop, reload, health, migrations and config.
complete -c aigwd -n "__fish_seen_subcommand_from start stop reload health migrations config" -s c -l conf -r -F -d 'Configuration file'
complete -c aigwd -n "__fish_seen_subcommand_from start stop reload health migrations config" -s p -l prefix -x -a '(__fish_complete_directories)' -d 'Prefix directory'
complete -c aigwd -n "__fish_seen_subcommand_from start" -l daemon -d 'Run in the background; return once listening'

# check FILE.
complete -c aigwd -n "__fish_seen_subcommand_from check" -F

# migrations bootstrap|up|list|reset [--yes].
complete -c aigwd -n "__fish_seen_subcommand_from migrations; and __aigwd_needs_sub" -a bootstrap -d "Create aigw's tables and run every migration"
complete -c aigwd -n "__fish_seen_subcommand_from migrations; and __aigwd_needs_sub" -a up -d 'Run the migrations not yet run'
complete -c aigwd -n "__fish_seen_subcommand_from migrations; and __aigwd_needs_sub" -a list -d 'List the migrations run and those pending'
complete -c aigwd -n "__fish_seen_subcommand_from migrations; and __aigwd_needs_sub" -a reset -d "Drop aigw's tables and all their data"
complete -c aigwd -n "__fish_seen_subcommand_from migrations; and not __fish_seen_subcommand_from $aigwd_migrations[1..3]" -s y -l yes -d 'Confirm reset'

# config init [FILE] | parse FILE | db_import FILE | db_export [FILE|-].
complete -c aigwd -n "__fish_seen_subcommand_from config; and __aigwd_needs_sub" -a init -d 'Write an example file to start from'
complete -c aigwd -n "__fish_seen_subcommand_from config; and __aigwd_needs_sub" -a parse -d 'Check a declarative file without loading it'
complete -c aigwd -n "__fish_seen_subcommand_from config; and __aigwd_needs_sub" -a db_import -d 'Load a declarative file into the database'
complete -c aigwd -n "__fish_seen_subcommand_from config; and __aigwd_needs_sub" -a db_export -d 'Write the database as a declarative file'
complete -c aigwd -n "__fish_seen_subcommand_from config; and __aigwd_config_file_for parse db_import db-import" -a '(__aigwd_declfiles)'
complete -c aigwd -n "__fish_seen_subcommand_from config; and __aigwd_config_file_for init db_export db-export" -F
complete -c aigwd -n "__fish_seen_subcommand_from config; and __aigwd_config_file_for db_export db-export" -a - -d 'Standard output'

# Every command's help.
complete -c aigwd -n "__fish_seen_subcommand_from start stop reload health check migrations config version" -s h -l help -d 'Show help for the command'
