// rtnetlink requests that configure a TUN interface; the contract is in netlink.h.
//
// Requests are built in a fixed buffer with the kernel's own NLMSG_*/RTA_* macros, and replies
// are parsed as untrusted input: every length is checked against what recvmsg() returned.
#include "netlink.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <net/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#define REQUEST_SIZE 256  // the largest request (addrgenmode) needs under 64 bytes
#define REPLY_SIZE 8192
#define ACK_TIMEOUT_SECONDS 5
// A fresh socket carries a single request, so one sequence number is enough; replies are still
// matched against it (and against our port id) rather than assumed.
#define SEQ 1
#define ACK_PENDING (-1)

typedef union {
  struct nlmsghdr h;
  char bytes[REQUEST_SIZE];
} request_t;

// Starts a request with a zeroed family header of `body_len` bytes and returns that header.
static void *begin(request_t *r, uint16_t type, uint16_t flags, size_t body_len, char *detail) {
  memset(r, 0, sizeof *r);
  detail[0] = '\0';
  r->h.nlmsg_len = NLMSG_LENGTH(body_len);
  r->h.nlmsg_type = type;
  r->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  r->h.nlmsg_seq = SEQ;
  return NLMSG_DATA(&r->h);
}

// Appends an attribute; NULL when it does not fit (then the caller reports EMSGSIZE).
static struct rtattr *attr_put(request_t *r, unsigned short type, const void *data, size_t len) {
  size_t at = NLMSG_ALIGN(r->h.nlmsg_len);
  if (at + RTA_SPACE(len) > sizeof r->bytes) return NULL;
  struct rtattr *a = (struct rtattr *)(r->bytes + at);
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  if (len > 0) memcpy(RTA_DATA(a), data, len);
  r->h.nlmsg_len = (uint32_t)(at + RTA_SPACE(len));
  return a;
}

// Closes a nested attribute opened with attr_put(r, type, NULL, 0): it spans all added since.
static void nest_end(request_t *r, struct rtattr *nest) {
  nest->rta_len = (unsigned short)(r->bytes + r->h.nlmsg_len - (char *)nest);
}

// The kernel's own explanation of an error (NLMSGERR_ATTR_MSG), when it sent one.
static void copy_detail(struct nlmsghdr *h, const struct nlmsgerr *e, char *detail) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return;
  size_t offset = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof *e);
  // Kernels without NETLINK_CAP_ACK echo our request's payload before the TLVs.
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) {
    if (e->msg.nlmsg_len < NLMSG_HDRLEN) return;
    offset += NLMSG_ALIGN((size_t)e->msg.nlmsg_len - NLMSG_HDRLEN);
  }
  if (offset >= h->nlmsg_len) return;
  int left = (int)(h->nlmsg_len - offset);
  for (struct rtattr *a = (struct rtattr *)((char *)h + offset); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
    if ((a->rta_type & NLA_TYPE_MASK) != NLMSGERR_ATTR_MSG) continue;
    size_t len = strnlen(RTA_DATA(a), RTA_PAYLOAD(a));
    if (len >= NL_DETAIL_SIZE) len = NL_DETAIL_SIZE - 1;
    memcpy(detail, RTA_DATA(a), len);
    detail[len] = '\0';
    return;
  }
}

// Looks for the answer to our request in one datagram: 0 for an ACK, a positive errno for a
// refusal, ACK_PENDING when the datagram holds neither.
static int find_ack(void *buf, ssize_t size, uint32_t portid, char *detail) {
  int left = (int)size;
  for (struct nlmsghdr *h = buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
    if (h->nlmsg_seq != SEQ || h->nlmsg_pid != portid || h->nlmsg_type != NLMSG_ERROR) continue;
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) return EPROTO;
    const struct nlmsgerr *e = NLMSG_DATA(h);
    if (e->error == 0) return 0;
    if (e->error > 0 || e->error < -4095) return EPROTO;
    copy_detail(h, e, detail);
    return -e->error;
  }
  // Bytes that do not form a whole message: the ACK may be among them, so do not wait for it.
  return left > 0 ? EPROTO : ACK_PENDING;
}

static int exchange(int fd, request_t *r, char *detail) {
  int one = 1;
  // Extended ACKs carry the kernel's reason; CAP_ACK keeps our request out of the reply. Kernels
  // older than either option (4.12, 4.3) still answer, only with less to say.
  if (setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) < 0 && errno != ENOPROTOOPT) return errno;
  if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one) < 0 && errno != ENOPROTOOPT) return errno;
  // rtnetlink queues the ACK before sendto() returns; the timeout only keeps a kernel that
  // misbehaves from blocking the event loop forever.
  struct timeval timeout = {.tv_sec = ACK_TIMEOUT_SECONDS, .tv_usec = 0};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0) return errno;
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  socklen_t local_len = sizeof local;
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) return errno;
  if (getsockname(fd, (struct sockaddr *)&local, &local_len) < 0) return errno;
  if (local_len != sizeof local) return EPROTO;

  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t sent;
  do sent = sendto(fd, r, r->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) return errno;
  if ((size_t)sent != r->h.nlmsg_len) return EMSGSIZE;

  uint32_t reply[REPLY_SIZE / sizeof(uint32_t)];  // uint32_t: aligned for struct nlmsghdr
  for (;;) {
    struct sockaddr_nl from;
    struct iovec iov = {.iov_base = reply, .iov_len = sizeof reply};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(fd, &mh, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
    if (mh.msg_flags & MSG_TRUNC) return EMSGSIZE;
    // Only the kernel (port 0) answers requests; a datagram from anyone else is not our ACK.
    if (mh.msg_namelen != sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0) continue;
    int rc = find_ack(reply, n, local.nl_pid, detail);
    if (rc != ACK_PENDING) return rc;
  }
}

static int transact(request_t *r, char *detail) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return errno;
  int rc = exchange(fd, r, detail);
  // The request was answered (or failed) already; close() has nothing left to report about it.
  (void)close(fd);
  return rc;
}

static size_t address_length(int family) {
  return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static void begin_link(request_t *r, unsigned ifindex, unsigned flags, unsigned change, char *detail) {
  struct ifinfomsg *ifi = begin(r, RTM_NEWLINK, 0, sizeof *ifi, detail);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = (int)ifindex;
  ifi->ifi_flags = flags;
  ifi->ifi_change = change;
}

int nl_set_mtu(unsigned ifindex, uint32_t mtu, char detail[NL_DETAIL_SIZE]) {
  request_t r;
  begin_link(&r, ifindex, 0, 0, detail);
  if (attr_put(&r, IFLA_MTU, &mtu, sizeof mtu) == NULL) return EMSGSIZE;
  return transact(&r, detail);
}

int nl_set_addr_gen_mode_none(unsigned ifindex, char detail[NL_DETAIL_SIZE]) {
  request_t r;
  begin_link(&r, ifindex, 0, 0, detail);
  uint8_t mode = IN6_ADDR_GEN_MODE_NONE;
  struct rtattr *af_spec = attr_put(&r, IFLA_AF_SPEC, NULL, 0);
  struct rtattr *inet6 = af_spec != NULL ? attr_put(&r, AF_INET6, NULL, 0) : NULL;
  if (inet6 == NULL || attr_put(&r, IFLA_INET6_ADDR_GEN_MODE, &mode, sizeof mode) == NULL) return EMSGSIZE;
  nest_end(&r, inet6);
  nest_end(&r, af_spec);
  return transact(&r, detail);
}

int nl_set_up(unsigned ifindex, char detail[NL_DETAIL_SIZE]) {
  request_t r;
  begin_link(&r, ifindex, IFF_UP, IFF_UP, detail);
  return transact(&r, detail);
}

int nl_add_address(unsigned ifindex, int family, const uint8_t *addr, uint8_t prefix_len, char detail[NL_DETAIL_SIZE]) {
  size_t len = address_length(family);
  detail[0] = '\0';
  if (len == 0 || prefix_len > len * 8) return EINVAL;
  request_t r;
  // EXCL: an address that is already there is reported (EEXIST), as `ip addr add` does.
  struct ifaddrmsg *ifa = begin(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifa, detail);
  ifa->ifa_family = (uint8_t)family;
  ifa->ifa_prefixlen = prefix_len;
  // Nothing else can answer on a point-to-point tunnel, so DAD would only delay the address.
  ifa->ifa_flags = family == AF_INET6 ? IFA_F_NODAD : 0;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = ifindex;
  // IFA_ADDRESS equal to IFA_LOCAL means "no peer address": the prefix is on-link.
  if (attr_put(&r, IFA_LOCAL, addr, len) == NULL || attr_put(&r, IFA_ADDRESS, addr, len) == NULL) return EMSGSIZE;
  return transact(&r, detail);
}

static int route_request(uint16_t type, uint16_t flags, unsigned ifindex, int family, const uint8_t *dst,
                         uint8_t prefix_len, char *detail) {
  size_t len = address_length(family);
  detail[0] = '\0';
  if (len == 0 || prefix_len > len * 8) return EINVAL;
  request_t r;
  struct rtmsg *rtm = begin(&r, type, flags, sizeof *rtm, detail);
  rtm->rtm_family = (uint8_t)family;
  rtm->rtm_dst_len = prefix_len;
  rtm->rtm_table = RT_TABLE_MAIN;
  if (type == RTM_NEWROUTE) {
    // What `ip route replace CIDR dev TUN` sends: no gateway, so the destination is on-link.
    rtm->rtm_protocol = RTPROT_BOOT;
    rtm->rtm_scope = RT_SCOPE_LINK;
    rtm->rtm_type = RTN_UNICAST;
  } else {
    // Protocol and type 0 and scope NOWHERE are wildcards: the route with this destination on
    // this device goes whoever added it, as with `ip route del`.
    rtm->rtm_scope = RT_SCOPE_NOWHERE;
  }
  uint32_t oif = ifindex;
  if (attr_put(&r, RTA_DST, dst, len) == NULL || attr_put(&r, RTA_OIF, &oif, sizeof oif) == NULL) return EMSGSIZE;
  return transact(&r, detail);
}

int nl_replace_route(unsigned ifindex, int family, const uint8_t *dst, uint8_t prefix_len, char detail[NL_DETAIL_SIZE]) {
  return route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, ifindex, family, dst, prefix_len, detail);
}

int nl_delete_route(unsigned ifindex, int family, const uint8_t *dst, uint8_t prefix_len, char detail[NL_DETAIL_SIZE]) {
  return route_request(RTM_DELROUTE, 0, ifindex, family, dst, prefix_len, detail);
}
