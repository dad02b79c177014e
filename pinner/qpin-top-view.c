/* qpin-top-view.c: the live ncurses view of `qpin top`
 *
 * One GMainLoop: a timeout refreshes the numbers, a watch on stdin takes
 * keys, SIGINT/SIGTERM quit.  The terminal is restored on every way out.
 */

#include "qpin-top.h"

#include <curses.h>
#include <glib-unix.h>
#include <unistd.h>

#define MIN_COLS 40
#define MIN_LINES 6

typedef struct {
  QpinSampler *sampler;
  const QpinTopSource *source;
  GMainLoop *loop;
  GPtrArray *vms;
  GHashTable *collapsed; /* pids */
  GHashTable *reported;
  char *message; /* the latest problem, shown under the header */
  GError *error; /* why the view stopped, if it failed */
  QpinTopSort sort;
  gboolean pmu;
  gboolean pmu_hidden_once; /* hidden when the host turned out to have none */
  gboolean help;
  guint selected; /* index among the VM rows */
  guint top;      /* first row shown */
  gint64 iterations, done;
  gboolean sampled; /* rates exist: two samples */
} View;

static const char *const help_lines[] = {
  "qpin top keys",
  "  q          quit",
  "  s          next sort column (%CPU, %WAIT, MIG/s, CSW/s, VM)",
  "  Up, Down   select a VM (also k, j)",
  "  Enter      expand or collapse the selected VM (also space)",
  "  e          expand or collapse every VM",
  "  p          show or hide the IPC and LLC-MPKI columns",
  "  h, ?       this help; any key closes it",
  "",
  "FLAGS: O ran or may run outside its planned CPUs (off-plan)",
  "       D its affinity was changed behind the daemon (drift)",
  "       S an SMT sibling of its CPU ran another VM's thread",
  "       N its dedicated CPU spent >= 10 % on something else (noise)",
  "       G the thread is gone",
};

static void
draw_line (int y, const char *text, attr_t attr)
{
  attron (attr);
  mvaddnstr (y, 0, text, COLS);
  for (int x = getcurx (stdscr); attr && x < COLS && getcury (stdscr) == y; x++)
    addch (' ');
  attroff (attr);
}

static void
draw_rows (View *v, GPtrArray *rows, int first_y, int last_y)
{
  guint vm_seen = 0, sel_row = 0;
  int height = last_y - first_y + 1;

  for (guint i = 0; i < rows->len; i++)
    if (((QpinTopRow *) g_ptr_array_index (rows, i))->vm_row && vm_seen++ == v->selected)
      sel_row = i;
  /* keep the selected VM on screen */
  if (sel_row < v->top)
    v->top = sel_row;
  else if ((int) (sel_row - v->top) >= height)
    v->top = sel_row - (guint) height + 1;
  for (int y = first_y; y <= last_y && v->top + (guint) (y - first_y) < rows->len; y++)
    {
      guint i = v->top + (guint) (y - first_y);
      const QpinTopRow *row = g_ptr_array_index (rows, i);
      draw_line (y, row->text,
                 i == sel_row && row->vm_row ? A_REVERSE
                 : row->vm_row               ? A_BOLD
                                             : A_NORMAL);
    }
}

static void
draw (View *v)
{
  g_autofree char *header = NULL, *titles = NULL, *footer = NULL;
  g_autoptr (GPtrArray) rows = NULL;
  const char *note = qpin_sampler_get_pmu_note (v->sampler);

  erase ();
  if (COLS < MIN_COLS || LINES < MIN_LINES)
    {
      g_autofree char *small = g_strdup_printf ("terminal too small (%dx%d): qpin top needs %dx%d",
                                                COLS, LINES, MIN_COLS, MIN_LINES);
      mvaddnstr (0, 0, small, COLS);
      refresh ();
      return;
    }
  if (v->help)
    {
      for (guint i = 0; i < G_N_ELEMENTS (help_lines) && (int) i < LINES; i++)
        draw_line ((int) i, help_lines[i], i == 0 ? A_BOLD : A_NORMAL);
      refresh ();
      return;
    }
  header = v->vms ? qpin_top_header (v->sampler, v->vms, v->source) : g_strdup ("");
  draw_line (0, v->sampled ? header : "qpin top: sampling...", A_BOLD);
  draw_line (1, v->message ? v->message : note ? note : "", A_NORMAL);
  titles = qpin_top_column_titles (v->pmu);
  draw_line (2, titles, A_REVERSE);
  if (v->vms)
    {
      rows = qpin_top_rows (v->sampler, v->vms, v->sort, v->collapsed, v->pmu);
      draw_rows (v, rows, 3, LINES - 2);
    }
  footer = g_strdup_printf ("q quit  s sort: %s  Enter expand/collapse  e all  p PMU columns  "
                            "h help",
                            qpin_top_sort_name (v->sort));
  draw_line (LINES - 1, footer, A_REVERSE);
  refresh ();
}

static void on_key (View *v, int key);

static gboolean
on_tick (gpointer data)
{
  View *v = data;
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);

  if (!qpin_top_refresh (v->sampler, v->source, v->reported, &v->vms, problems, &v->error))
    {
      g_main_loop_quit (v->loop);
      return G_SOURCE_REMOVE;
    }
  if (problems->len)
    {
      g_free (v->message);
      v->message = g_strdup (g_ptr_array_index (problems, problems->len - 1));
    }
  v->sampled = TRUE;
  /* a resize arrives as KEY_RESIZE from getch, with nothing on stdin */
  for (int key; (key = getch ()) != ERR;)
    on_key (v, key);
  if (qpin_sampler_get_pmu_note (v->sampler) && !v->pmu_hidden_once)
    {
      v->pmu = FALSE;
      v->pmu_hidden_once = TRUE;
    }
  if (v->vms->len && v->selected >= v->vms->len)
    v->selected = v->vms->len - 1;
  draw (v);
  if (v->iterations && ++v->done >= v->iterations)
    {
      g_main_loop_quit (v->loop);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static GPid
selected_pid (View *v)
{
  g_autoptr (GPtrArray) rows = NULL;
  guint seen = 0;

  if (v->vms == NULL)
    return 0;
  rows = qpin_top_rows (v->sampler, v->vms, v->sort, NULL, FALSE);
  for (guint i = 0; i < rows->len; i++)
    {
      const QpinTopRow *row = g_ptr_array_index (rows, i);
      if (row->vm_row && seen++ == v->selected)
        return row->pid;
    }
  return 0;
}

static void
toggle_all (View *v)
{
  gboolean any = g_hash_table_size (v->collapsed) > 0;

  g_hash_table_remove_all (v->collapsed);
  for (guint i = 0; !any && v->vms && i < v->vms->len; i++)
    g_hash_table_add (v->collapsed,
                      GINT_TO_POINTER (((QpinTopVm *) g_ptr_array_index (v->vms, i))->pid));
}

static void
on_key (View *v, int key)
{
  GPid pid;

  if (v->help && key != KEY_RESIZE)
    {
      v->help = FALSE;
      return;
    }
  switch (key)
    {
    case 'q':
    case 'Q':
      g_main_loop_quit (v->loop);
      break;
    case 's':
      v->sort = (v->sort + 1) % QPIN_TOP_N_SORTS;
      break;
    case 'p':
      v->pmu = !v->pmu;
      break;
    case 'e':
      toggle_all (v);
      break;
    case 'h':
    case '?':
      v->help = TRUE;
      break;
    case KEY_UP:
    case 'k':
      v->selected -= v->selected > 0;
      break;
    case KEY_DOWN:
    case 'j':
      v->selected += v->vms && v->selected + 1 < v->vms->len;
      break;
    case '\n':
    case '\r':
    case KEY_ENTER:
    case ' ':
      pid = selected_pid (v);
      if (pid && !g_hash_table_remove (v->collapsed, GINT_TO_POINTER (pid)))
        g_hash_table_add (v->collapsed, GINT_TO_POINTER (pid));
      break;
    default:
      break;
    }
}

static gboolean
on_input (gint fd, GIOCondition condition, gpointer data)
{
  View *v = data;
  int key;

  while ((key = getch ()) != ERR)
    on_key (v, key);
  draw (v);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_signal (gpointer data)
{
  g_main_loop_quit (((View *) data)->loop);
  return G_SOURCE_CONTINUE;
}

static void
view_clear (View *v)
{
  g_clear_pointer (&v->vms, g_ptr_array_unref);
  g_clear_pointer (&v->collapsed, g_hash_table_unref);
  g_clear_pointer (&v->reported, g_hash_table_unref);
  g_clear_pointer (&v->loop, g_main_loop_unref);
  g_free (v->message);
}

static void
view_loop (View *v, guint interval_ms)
{
  guint tick, input, sigint, sigterm;

  initscr ();
  cbreak ();
  noecho ();
  nodelay (stdscr, TRUE);
  keypad (stdscr, TRUE);
  curs_set (0);
  draw (v);
  tick = g_timeout_add (interval_ms, on_tick, v);
  input = g_unix_fd_add (STDIN_FILENO, G_IO_IN, on_input, v);
  sigint = g_unix_signal_add (SIGINT, on_signal, v);
  sigterm = g_unix_signal_add (SIGTERM, on_signal, v);
  g_main_loop_run (v->loop);
  g_source_remove (input);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  if (v->error == NULL && (!v->iterations || v->done < v->iterations))
    g_source_remove (tick);
  endwin ();
}

/**
 * qpin_top_view_run:
 * @iterations: refreshes before it returns; 0: until the user quits
 *
 * Runs the live view on the terminal until 'q', SIGINT or SIGTERM.
 *
 * Returns: %FALSE when stdin/stdout are not a terminal or the source
 *   failed (the daemon went away)
 */
gboolean
qpin_top_view_run (QpinSampler *sampler, const QpinTopSource *source, guint interval_ms,
                   gint64 iterations, GError **error)
{
  View v = { .sampler = sampler, .source = source, .pmu = TRUE, .iterations = iterations };
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);

  if (!isatty (STDIN_FILENO) || !isatty (STDOUT_FILENO))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "the live view needs a terminal: use -b for plain output");
      return FALSE;
    }
  v.loop = g_main_loop_new (NULL, FALSE);
  v.collapsed = g_hash_table_new (NULL, NULL);
  v.reported = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  /* the baseline: the first refresh shows rates */
  if (!qpin_top_refresh (sampler, source, v.reported, &v.vms, problems, error))
    {
      view_clear (&v);
      return FALSE;
    }
  if (problems->len)
    v.message = g_strdup (g_ptr_array_index (problems, problems->len - 1));
  view_loop (&v, interval_ms);
  view_clear (&v);
  if (v.error)
    {
      g_propagate_error (error, v.error);
      return FALSE;
    }
  return TRUE;
}
