/* aigwctl/jwt.c: placeholder until its module lands. */
#include "ctl.h"

const ctl_cmd_t *ctl_cmds_jwt(size_t *n)
{
    *n = 0;
    return NULL;
}
