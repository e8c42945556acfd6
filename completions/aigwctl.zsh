#compdef aigwctl
# zsh completion for aigwctl(1).
#
# Install as _aigwctl in a directory of $fpath, for example
# /usr/local/share/zsh/site-functions/_aigwctl.

(( $+functions[_aigwctl_commands] )) ||
_aigwctl_commands() {
  local -a commands
  commands=(
    'status:show the node'\''s /status (connections, database)'
    'info:show the node'\''s GET / (version, node id, configuration)'
    'version:print the version of aigwctl'
  )
  _describe -t commands 'aigwctl command' commands
}

(( $+functions[_aigwctl_admin_urls] )) ||
_aigwctl_admin_urls() {
  local expl
  local -a urls
  urls=(http://127.0.0.1:8001)
  [[ -n ${AIGW_ADMIN_URL-} ]] && urls=($AIGW_ADMIN_URL $urls)
  _wanted urls expl 'admin API URL' compadd -a urls
}

_aigwctl() {
  _arguments \
    '(- 1 *)'{-h,--help}'[show help]' \
    '--admin-url[admin API URL]:admin API URL:_aigwctl_admin_urls' \
    '1: :_aigwctl_commands'
}

_aigwctl "$@"
