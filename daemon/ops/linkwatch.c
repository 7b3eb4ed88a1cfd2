// SPDX-License-Identifier: GPL-2.0-or-later
#include "ops/linkwatch.h"

#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <sys/epoll.h>

#include "log.h"
#include "core/loop.h"
#include "macros.h"

#define WATCHED_LINKS_MAX 256

struct link_state {
	int ifindex;
	bool up;
};

struct linkwatch {
	struct loop *loop;
	struct nl_sock *sock;
	int fd;
	linkwatch_fn fn;
	void *userdata;
	bool initial; /* the dump at start: learn, do not report */
	struct link_state links[WATCHED_LINKS_MAX];
	size_t n_links;
};

bool linkwatch_flags_up(unsigned flags)
{
	return (flags & IFF_UP) && (flags & IFF_RUNNING);
}

/* libnl's -NLE_* codes are not errno values: the one place they are converted. */
static int nl_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case 0:
		return 0;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_INTR:
		return -EINTR;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_PROTO_MISMATCH:
	case NLE_AF_NOSUPPORT:
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

static struct link_state *find_link(struct linkwatch *w, int ifindex, bool create)
{
	for (size_t i = 0; i < w->n_links; i++)
		if (w->links[i].ifindex == ifindex)
			return &w->links[i];
	if (!create || w->n_links == WATCHED_LINKS_MAX)
		return NULL;
	w->links[w->n_links] = (struct link_state){ .ifindex = ifindex, .up = false };
	return &w->links[w->n_links++];
}

static int on_message(struct nl_msg *msg, void *arg)
{
	struct linkwatch *w = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct ifinfomsg *ifi;
	struct nlattr *name_attr;
	struct link_state *ls;
	char ifname[IFNAMSIZ] = "?";
	bool up, known;

	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return NL_OK;
	if (!nlmsg_valid_hdr(nlh, sizeof(*ifi)))
		return NL_OK;
	ifi = nlmsg_data(nlh);
	name_attr = nlmsg_find_attr(nlh, sizeof(*ifi), IFLA_IFNAME);
	if (name_attr)
		nla_strlcpy(ifname, name_attr, sizeof(ifname));
	up = nlh->nlmsg_type == RTM_NEWLINK && linkwatch_flags_up(ifi->ifi_flags);
	known = find_link(w, ifi->ifi_index, false) != NULL;
	ls = find_link(w, ifi->ifi_index, true);
	if (!ls)
		return NL_OK;
	if (known && ls->up == up)
		return NL_OK; /* another attribute changed */
	ls->up = up;
	if (w->initial || (!known && !up))
		return NL_OK;
	log_notice("network link %s is %s", ifname, up ? "up" : "down");
	w->fn(ifname, up, w->userdata);
	return NL_OK;
}

static void on_readable(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct linkwatch *w = userdata;
	int r = nl_recvmsgs_default(w->sock);

	/* ENOBUFS: events were dropped; the next ones still come, and the mounts' probe runs
	 * anyway. */
	if (r < 0 && r != -NLE_AGAIN)
		log_debug_errno(nl_to_errno(r), "link events: %s", nl_geterror(r));
}

int linkwatch_start(struct loop *loop, linkwatch_fn fn, void *userdata, struct linkwatch **out)
{
	struct linkwatch *w = calloc(1, sizeof(*w));
	struct rtgenmsg gen = { .rtgen_family = AF_UNSPEC };
	int r;

	if (!w)
		return -ENOMEM;
	w->loop = loop;
	w->fn = fn;
	w->userdata = userdata;
	w->fd = -EBADF;
	w->sock = nl_socket_alloc();
	if (!w->sock) {
		free(w);
		return -ENOMEM;
	}
	nl_socket_disable_seq_check(w->sock);
	nl_socket_modify_cb(w->sock, NL_CB_VALID, NL_CB_CUSTOM, on_message, w);
	r = nl_connect(w->sock, NETLINK_ROUTE);
	if (r >= 0)
		r = nl_socket_add_membership(w->sock, RTNLGRP_LINK);
	/* Learn the links as they are now (a dump), blocking: it is short. */
	if (r >= 0)
		r = nl_send_simple(w->sock, RTM_GETLINK, NLM_F_DUMP, &gen, sizeof(gen));
	if (r >= 0) {
		w->initial = true;
		r = nl_recvmsgs_default(w->sock);
		w->initial = false;
	}
	if (r >= 0)
		r = nl_socket_set_nonblocking(w->sock);
	if (r < 0) {
		r = nl_to_errno(r);
		linkwatch_stop(w);
		return r;
	}
	w->fd = nl_socket_get_fd(w->sock);
	r = loop_add_fd(loop, w->fd, EPOLLIN, on_readable, w);
	if (r < 0) {
		w->fd = -EBADF;
		linkwatch_stop(w);
		return r;
	}
	*out = w;
	return 0;
}

void linkwatch_stop(struct linkwatch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		loop_remove_fd(w->loop, w->fd);
	nl_socket_free(w->sock);
	free(w);
}
