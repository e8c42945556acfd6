/* aigwctl/context.c: placeholder until named contexts land. */
#include "ctl.h"

int ctl_context_apply(ctl_t *c, const char *name)
{
    (void)c;
    (void)name;
    return CTL_OK;
}
