/* qpin-proc-events.c: NETLINK_CONNECTOR / CN_IDX_PROC listener
 *
 * The connector reports every fork and exit on the host.  A classic BPF
 * filter on the socket keeps only FORK, EXIT and COMM (a thread named
 * itself) events whose (parent) thread group is a watched QEMU, so qpin wakes up for its own VMs'
 * threads and for nothing else; with no VM it never wakes up.  The filter
 * is rebuilt when the set of VMs changes.
 */

#include "qpin-proc-events.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Where the fields sit in a received datagram. */
#define OFF_EVENT (NLMSG_HDRLEN + offsetof (struct cn_msg, data))
#define OFF_WHAT (OFF_EVENT + offsetof (struct proc_event, what))
/* A new thread's fork event names the process's parent as "parent" (threads
 * share the leader's real_parent); the process it joins is child_tgid. */
#define OFF_FORK_TGID (OFF_EVENT + offsetof (struct proc_event, event_data.fork.child_tgid))
#define OFF_EXIT_TGID (OFF_EVENT + offsetof (struct proc_event, event_data.exit.process_tgid))
#define OFF_COMM_TGID (OFF_EVENT + offsetof (struct proc_event, event_data.comm.process_tgid))

/* A classic BPF program has at most BPF_MAXINSNS (4096) instructions: one
 * per pid, plus two per block of PIDS_PER_BLOCK (a conditional jump reaches
 * at most 255 instructions ahead, so each block has its own accept). */
#define PIDS_PER_BLOCK 254

struct _QpinProcEvents {
  int fd;
  guint source;
  QpinProcEventFunc func;
  QpinProcCommFunc comm_func;
  gpointer user_data;
};

static gboolean
send_op (int fd, enum proc_cn_mcast_op op)
{
  char buf[NLMSG_SPACE (sizeof (struct cn_msg) + sizeof op)]
    __attribute__ ((aligned (NLMSG_ALIGNTO)));
  struct nlmsghdr *hdr = (struct nlmsghdr *) buf;
  struct cn_msg *msg = NLMSG_DATA (hdr);

  memset (buf, 0, sizeof buf);
  hdr->nlmsg_len = NLMSG_LENGTH (sizeof *msg + sizeof op);
  hdr->nlmsg_type = NLMSG_DONE;
  msg->id.idx = CN_IDX_PROC;
  msg->id.val = CN_VAL_PROC;
  msg->len = sizeof op;
  memcpy (msg->data, &op, sizeof op);
  return send (fd, buf, hdr->nlmsg_len, 0) == (ssize_t) hdr->nlmsg_len;
}

static void
dispatch (QpinProcEvents *events, const char *buf, gsize len)
{
  for (const struct nlmsghdr *hdr = (const void *) buf; NLMSG_OK (hdr, len);
       hdr = NLMSG_NEXT (hdr, len))
    {
      struct proc_event ev;

      if (hdr->nlmsg_len < OFF_EVENT + sizeof ev)
        continue;
      /* the event sits at offset 36: copy it out, its u64 wants 8 bytes */
      memcpy (&ev, (const char *) hdr + OFF_EVENT, sizeof ev);
      if (ev.what == PROC_EVENT_FORK
          && ev.event_data.fork.child_pid != ev.event_data.fork.child_tgid)
        events->func (ev.event_data.fork.child_tgid, ev.event_data.fork.child_pid, TRUE,
                      events->user_data);
      else if (ev.what == PROC_EVENT_EXIT
               && ev.event_data.exit.process_pid != ev.event_data.exit.process_tgid)
        events->func (ev.event_data.exit.process_tgid, ev.event_data.exit.process_pid, FALSE,
                      events->user_data);
      else if (ev.what == PROC_EVENT_COMM && events->comm_func)
        {
          char comm[sizeof ev.event_data.comm.comm + 1];

          memcpy (comm, ev.event_data.comm.comm, sizeof ev.event_data.comm.comm);
          comm[sizeof ev.event_data.comm.comm] = '\0';
          events->comm_func (ev.event_data.comm.process_tgid, ev.event_data.comm.process_pid, comm,
                             events->user_data);
        }
    }
}

static gboolean
on_readable (gint fd, GIOCondition condition, gpointer user_data)
{
  QpinProcEvents *events = user_data;
  char buf[8192] __attribute__ ((aligned (NLMSG_ALIGNTO)));

  for (;;)
    {
      ssize_t n = recv (fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0)
        {
          dispatch (events, buf, (gsize) n);
          continue;
        }
      if (n < 0 && errno == ENOBUFS)
        {
          g_info ("process events overran; rescanning every VM");
          events->func (0, 0, TRUE, events->user_data);
          continue;
        }
      break;
    }
  return G_SOURCE_CONTINUE;
}

/**
 * qpin_proc_events_set_pids:
 * @pids: (array length=n_pids): the processes whose threads to report
 *
 * Replaces the socket filter.  Fails past QPIN_PROC_EVENTS_MAX_PIDS
 * processes.
 */
gboolean
qpin_proc_events_set_pids (QpinProcEvents *events, const GPid *pids, guint n_pids, GError **error)
{
  g_autofree struct sock_filter *code = NULL;
  struct sock_fprog prog;
  guint blocks = (n_pids + PIDS_PER_BLOCK - 1) / PIDS_PER_BLOCK;
  guint n = 0, total = 10 + n_pids + 2 * blocks + 1;

  if (n_pids > QPIN_PROC_EVENTS_MAX_PIDS)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                   "process events: more than %d VMs to watch", QPIN_PROC_EVENTS_MAX_PIDS);
      return FALSE;
    }
  code = g_new0 (struct sock_filter, total);
  /* BPF_ABS loads are big-endian: compare against htonl() of the value;
   * jump offsets are 8 bits, so each pid test sits beside its own accept */
  /* 0-9: load the tgid of a fork, exit or comm event (drop the rest),
   * then jump to the pid tests at 10 */
  code[n++] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, OFF_WHAT);
  code[n++]
    = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, htonl (PROC_EVENT_FORK), 0, 2);
  code[n++] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, OFF_FORK_TGID);
  code[n++] = (struct sock_filter) BPF_STMT (BPF_JMP | BPF_JA, 6);
  code[n++]
    = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, htonl (PROC_EVENT_EXIT), 0, 2);
  code[n++] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, OFF_EXIT_TGID);
  code[n++] = (struct sock_filter) BPF_STMT (BPF_JMP | BPF_JA, 3);
  code[n++]
    = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, htonl (PROC_EVENT_COMM), 1, 0);
  code[n++] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, 0);
  code[n++] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, OFF_COMM_TGID);
  /* each block: a test per pid that jumps to the block's accept when
   * equal, then a jump over that accept to the next block */
  for (guint b = 0; b < blocks; b++)
    {
      guint first = b * PIDS_PER_BLOCK, len = MIN (PIDS_PER_BLOCK, n_pids - first);

      for (guint i = 0; i < len; i++)
        code[n++] = (struct sock_filter) BPF_JUMP (
          BPF_JMP | BPF_JEQ | BPF_K, htonl ((guint32) pids[first + i]), (guint8) (len - i), 0);
      code[n++] = (struct sock_filter) BPF_STMT (BPF_JMP | BPF_JA, 1);
      code[n++] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, 0xffffffff);
    }
  code[n++] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, 0);
  g_assert (n == total);
  prog.len = (unsigned short) total;
  prog.filter = code;
  if (setsockopt (events->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0)
    {
      int err = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err),
                   "process events: cannot set the socket filter: %s", g_strerror (err));
      return FALSE;
    }
  return TRUE;
}

/**
 * qpin_proc_events_set_comm_func:
 * @func: (nullable): called when a thread of a watched process names itself
 */
void
qpin_proc_events_set_comm_func (QpinProcEvents *events, QpinProcCommFunc func)
{
  events->comm_func = func;
}

/**
 * qpin_proc_events_new:
 * @func: called for each thread created or exited in a watched process
 *
 * Returns: (transfer full): a listener watching no process yet; %NULL
 *   when the connector is unavailable (not root, no CONFIG_PROC_EVENTS)
 */
QpinProcEvents *
qpin_proc_events_new (QpinProcEventFunc func, gpointer user_data, GError **error)
{
  g_autoptr (QpinProcEvents) events = g_new0 (QpinProcEvents, 1);
  struct sockaddr_nl addr = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
  int rcvbuf = 1 << 20;

  events->func = func;
  events->user_data = user_data;
  events->fd = socket (PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
  if (events->fd < 0 || bind (events->fd, (struct sockaddr *) &addr, sizeof addr) != 0)
    {
      int err = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err),
                   "process events connector unavailable: %s", g_strerror (err));
      return NULL;
    }
  setsockopt (events->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  /* filter before listening, so nothing unwanted is ever queued */
  if (!qpin_proc_events_set_pids (events, NULL, 0, error))
    return NULL;
  if (!send_op (events->fd, PROC_CN_MCAST_LISTEN))
    {
      int err = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err),
                   "process events connector refused to listen: %s", g_strerror (err));
      return NULL;
    }
  events->source = g_unix_fd_add (events->fd, G_IO_IN, on_readable, events);
  return g_steal_pointer (&events);
}

void
qpin_proc_events_free (QpinProcEvents *events)
{
  if (events == NULL)
    return;
  if (events->source)
    g_source_remove (events->source);
  if (events->fd >= 0)
    {
      if (events->source)
        send_op (events->fd, PROC_CN_MCAST_IGNORE);
      close (events->fd);
    }
  g_free (events);
}
