#compdef aigwd
# zsh completion for aigwd(8).
#
# Install as _aigwd in a directory of $fpath, for example
# /usr/local/share/zsh/site-functions/_aigwd.

(( $+functions[_aigwd_commands] )) ||
_aigwd_commands() {
  local -a commands
  commands=(
    'start:start aigwd (in the foreground unless --daemon)'
    'stop:stop the aigwd running in the prefix'
    'reload:re-read the configuration and certificates of the running aigwd'
    'health:tell whether aigwd is running in the prefix'
    'check:validate a configuration file'
    'migrations:prepare or upgrade the database (SQLite or PostgreSQL)'
    "config:use declarative configuration files (Kong's kong.yml format)"
    'version:print the version'
    'help:list the commands'
  )
  _describe -t commands 'aigwd command' commands
}

(( $+functions[_aigwd_migrations_commands] )) ||
_aigwd_migrations_commands() {
  local -a commands
  commands=(
    "bootstrap:create aigw's tables in an empty database and run every migration"
    'up:run the migrations not yet run'
    'list:list the migrations run and those pending'
    "reset:drop aigw's tables and all their data (needs --yes)"
  )
  _describe -t commands 'aigwd migrations command' commands
}

(( $+functions[_aigwd_config_commands] )) ||
_aigwd_config_commands() {
  local -a commands
  commands=(
    'init:write an example file to start from (default ./kong.yml)'
    'parse:check a declarative file without loading it'
    'db_import:load a declarative file into the database'
    'db_export:write the database as a declarative file (default ./kong.yml)'
  )
  _describe -t commands 'aigwd config command' commands
}

# The FILE of `aigwd config SUBCOMMAND`: what it may be depends on the subcommand.
(( $+functions[_aigwd_config_file] )) ||
_aigwd_config_file() {
  local sub=${line[1]}
  case $sub in
    (parse|db_import|db-import)
      _files -g '*.(yml|yaml|json)(-.)' ;;
    (db_export|db-export)
      _alternative \
        'files:output file:_files' \
        'stdout:standard output:((-\:standard\ output))' ;;
    (init)
      _files ;;
  esac
}

_aigwd() {
  local curcontext="$curcontext" state state_descr line ret=1
  typeset -A opt_args

  _arguments -C \
    '(- 1 *)'{-h,--help}'[list the commands]' \
    '(- 1 *)'{-v,--version}'[print the version]' \
    '1: :_aigwd_commands' \
    '*:: :->command_args' && ret=0

  if [[ $state == command_args ]]; then
    curcontext="${curcontext%:*:*}:aigwd-${words[1]}:"
    local -a common
    common=(
      '(-c --conf)'{-c,--conf}'[configuration file]:configuration file:_files'
      '(-p --prefix)'{-p,--prefix}'[prefix directory]:prefix directory:_directories'
      '(- *)'{-h,--help}'[show help for the command]'
    )
    case ${words[1]} in
      (start)
        _arguments $common \
          '--daemon[run in the background and return once listening]' && ret=0
        ;;
      (stop|reload|health)
        _arguments $common && ret=0
        ;;
      (check)
        _arguments \
          '(- *)'{-h,--help}'[show help for the command]' \
          '1:configuration file:_files' && ret=0
        ;;
      (migrations)
        _arguments $common \
          '(-y --yes)'{-y,--yes}'[confirm reset]' \
          '1: :_aigwd_migrations_commands' && ret=0
        ;;
      (config)
        _arguments $common \
          '1: :_aigwd_config_commands' \
          '2:declarative file:_aigwd_config_file' && ret=0
        ;;
      (version)
        _arguments \
          '(- *)'{-h,--help}'[show help for the command]' && ret=0
        ;;
    esac
  fi
  return ret
}

_aigwd "$@"
