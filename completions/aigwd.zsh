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
    'version:print the version'
    'help:list the commands'
  )
  _describe -t commands 'aigwd command' commands
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
      (version)
        _arguments \
          '(- *)'{-h,--help}'[show help for the command]' && ret=0
        ;;
    esac
  fi
  return ret
}

_aigwd "$@"
