/* qpin-irq-private.h: IRQ steering entry points only tests use */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void qpin_irq_steer_start (const char *root, const char *state_path);
void qpin_irq_steer_abandon (void);

G_END_DECLS
