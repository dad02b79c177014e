/* qpin-cmd-plan.c: `qpin plan` (being written) */
#include <stdio.h>
#include "qpin-commands.h"

int
qpin_cmd_plan (int argc, char **argv)
{
  fprintf (stderr, "qpin plan: not implemented yet\n");
  return 1;
}
