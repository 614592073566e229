// Batched UDP sends and receives for the QUIC endpoint (src/quic/batch-send.ts, batch-receive.ts).
//
// Why: node's dgram costs a JS->C++ call, a send request and a sendmsg() per datagram, which was
// a quarter of the QUIC sender's CPU. Here a whole flush of datagrams goes out in one call, and
// runs of equal-size datagrams in one sendmsg() with UDP GSO (the kernel splits them; Linux 4.18+).
// On the receiving side node emits one 'message' event with a fresh Buffer per datagram; here a
// libuv poll drains the socket with recvmmsg() (and UDP GRO, so a GSO burst arrives as one read)
// into one reused buffer and crosses into JS once per batch.
//
// JS surface:
//   new UdpSender(fd)                       fd of a bound UDP socket owned by node's dgram
//   sender.send(buffer, lengths, count, host, port) -> datagrams handed to the kernel
//   new UdpReceiver(fd, onBatch(count, error?))   polls a dup of fd; node's reader must be stopped
//   receiver.buffer / .lengths / .sources (6 words a datagram: address bytes, port | IPv6 flag,
//   scope id), all reused; receiver.host(i): datagram i's address as dgram formats it; .close()
#define _GNU_SOURCE  // recvmmsg
#define NAPI_VERSION 8
#define ADDON_NAME "vibepn_udp"
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>

#include "poll_source.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#define GSO_MAX_SEGMENTS 64   // the kernel's UDP_MAX_SEGMENTS
#define GSO_MAX_BYTES 65000   // a GSO send is still one IP datagram before segmentation

typedef struct {
  int fd;     // borrowed from node's dgram socket, which closes it
  bool gso;   // cleared for good once the kernel refuses UDP_SEGMENT
} udp_sender_t;

static void udp_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static napi_value udp_new(napi_env env, napi_callback_info info) {
  napi_value arg, self;
  CHECK(get_args(env, info, 1, &arg, &self));
  int32_t fd = -1;
  if (napi_get_value_int32(env, arg, &fd) != napi_ok || fd < 0) {
    return throw_type_error(env, "usage: new UdpSender(fd: number) with the fd of a bound UDP socket");
  }
  udp_sender_t *u = calloc(1, sizeof *u);
  if (u == NULL) return throw_errno(env, "allocate UdpSender", ENOMEM);
  u->fd = fd;
  u->gso = true;
  if (napi_wrap(env, self, u, udp_finalize, NULL, NULL) != napi_ok) {
    free(u);
    napi_throw_error(env, NULL, ADDON_NAME ": napi_wrap failed");
    return NULL;
  }
  return self;
}

// One sendmsg() for `count` datagrams laid back to back at `data`, all `segment` bytes but the
// last (segment == 0: a single plain datagram). Returns 0 or the errno.
static int udp_sendmsg(udp_sender_t *u, const struct sockaddr *to, socklen_t to_len, uint8_t *data, size_t bytes, uint16_t segment) {
  struct iovec iov = {.iov_base = data, .iov_len = bytes};
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = {.msg_name = (void *)to, .msg_namelen = to_len, .msg_iov = &iov, .msg_iovlen = 1};
  if (segment != 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(cm), &segment, sizeof segment);
  }
  ssize_t n;
  do n = sendmsg(u->fd, &msg, 0);
  while (n < 0 && errno == EINTR);
  return n < 0 ? errno : 0;
}

// send(buffer: Uint8Array, lengths: Uint32Array, count, host, port) -> datagrams sent.
// Datagram i is lengths[i] bytes, packed back to back from buffer[0]. A full socket buffer
// (EAGAIN) or any other failure drops the rest of the flush: QUIC retransmits what is lost.
static napi_value udp_send(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  udp_sender_t *u = unwrap_this(env, info, 5, argv, ADDON_NAME ": send called on something that is not a UdpSender");
  if (u == NULL) return NULL;
  size_t buffer_len, lengths_len;
  void *buffer_data, *lengths_data;
  uint32_t count, port;
  char host[INET6_ADDRSTRLEN + 1];
  size_t host_len;
  // Missing arguments arrive as undefined, which every check refuses.
  if (!get_typed_array(env, argv[0], napi_uint8_array, &buffer_data, &buffer_len) ||
      !get_typed_array(env, argv[1], napi_uint32_array, &lengths_data, &lengths_len) ||
      napi_get_value_uint32(env, argv[2], &count) != napi_ok ||
      napi_get_value_string_utf8(env, argv[3], host, sizeof host, &host_len) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &port) != napi_ok || port > 65535 || count > lengths_len) {
    return throw_type_error(env, "usage: sender.send(buffer: Uint8Array, lengths: Uint32Array, count, host, port)");
  }
  struct sockaddr_storage to;
  socklen_t to_len;
  memset(&to, 0, sizeof to);
  struct sockaddr_in *v4 = (struct sockaddr_in *)&to;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&to;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    to_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    to_len = sizeof *v6;
  } else {
    return throw_type_error(env, ADDON_NAME ": UdpSender.send host must be an IP address literal");
  }
  const uint32_t *lengths = lengths_data;
  uint8_t *data = buffer_data;
  size_t offset = 0;
  uint32_t sent = 0;
  while (sent < count) {
    uint32_t segment = lengths[sent], n = 1;
    size_t bytes = segment;
    // A run of equal sizes, optionally closed by one shorter datagram, is one GSO send.
    if (u->gso) {
      while (sent + n < count && n < GSO_MAX_SEGMENTS && lengths[sent + n] <= segment &&
             bytes + lengths[sent + n] <= GSO_MAX_BYTES) {
        bytes += lengths[sent + n];
        n++;
        if (lengths[sent + n - 1] < segment) break;
      }
    }
    if (offset + bytes > buffer_len) break;  // lengths lie about the buffer: send nothing more
    int err = udp_sendmsg(u, (struct sockaddr *)&to, to_len, data + offset, bytes, n > 1 ? (uint16_t)segment : 0);
    if (err != 0 && n > 1 && (err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP)) {
      // No UDP GSO here (old kernel, or the route's device lacks checksum offload): from now on
      // one datagram per sendmsg(), starting with this run.
      u->gso = false;
      continue;
    }
    if (err != 0) break;
    offset += bytes;
    sent += n;
  }
  return uint32_value(env, sent);
}

// ---- UdpReceiver ----

#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define RECV_MAX_DATAGRAMS 256     // per JS callback, so a flood cannot starve the rest of the loop
#define RECV_SLOT 65536            // one read: a datagram, or a GRO super-datagram (at most 64 KiB)
#define RECV_SLOTS 16              // messages per recvmmsg()
#define RECV_SEGMENTS_PER_SLOT 64  // lengths entries a GRO read may need (the kernel's UDP_MAX_SEGMENTS)
#define RECV_BUFFER (2 * RECV_SLOTS * RECV_SLOT)
#define SOURCE_WORDS 6             // 16 address bytes, port | IPv6 flag, IPv6 scope id
#define SOURCE_IPV6 0x10000u

typedef struct {
  poll_source_t src;  // first: the struct is freed and unwrapped through it; its fd is our dup
  bool gro;           // the kernel accepted UDP_GRO: reads may carry several datagrams
  uint8_t *data;
  uint32_t *lens;
  uint32_t *srcs;
  struct mmsghdr msgs[RECV_SLOTS];
  struct iovec iovs[RECV_SLOTS];
  struct sockaddr_storage names[RECV_SLOTS];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } controls[RECV_SLOTS];
} udp_receiver_t;

static void recv_before_close(poll_source_t *s) {
  udp_receiver_t *r = (udp_receiver_t *)s;
  if (r->gro) {
    // The socket outlives us: a later plain reader must not get coalesced datagrams.
    int off = 0;
    (void)setsockopt(s->fd, SOL_UDP, UDP_GRO, &off, sizeof off);
    r->gro = false;
  }
}

static void encode_source(const struct sockaddr_storage *from, uint32_t *words) {
  memset(words, 0, SOURCE_WORDS * sizeof *words);
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)from;
    memcpy(words, &v4->sin_addr, 4);
    words[4] = ntohs(v4->sin_port);
  } else if (from->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)from;
    memcpy(words, &v6->sin6_addr, 16);
    words[4] = ntohs(v6->sin6_port) | SOURCE_IPV6;
    words[5] = v6->sin6_scope_id;
  }
}

// The UDP_GRO segment size of a read, or 0 when it holds one datagram.
static int gro_segment(struct msghdr *msg) {
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
    if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
      int segment;
      memcpy(&segment, CMSG_DATA(cm), sizeof segment);
      return segment;
    }
  }
  return 0;
}

// Errors after which the fd stays readable forever: stop instead of spinning.
static bool recv_error_is_fatal(int err) {
  return err == EBADF || err == ENOTSOCK || err == EFAULT || err == EINVAL;
}

static uint32_t recv_drain(poll_source_t *s, int *err) {
  udp_receiver_t *r = (udp_receiver_t *)s;
  uint32_t count = 0;
  size_t used = 0;
  for (;;) {
    size_t entries = RECV_MAX_DATAGRAMS - count;
    size_t vlen = (RECV_BUFFER - used) / RECV_SLOT;
    if (vlen > RECV_SLOTS) vlen = RECV_SLOTS;
    if (r->gro) entries /= RECV_SEGMENTS_PER_SLOT;
    if (vlen > entries) vlen = entries;
    if (vlen == 0) break;
    for (size_t i = 0; i < vlen; i++) {
      r->iovs[i].iov_base = r->data + used + i * RECV_SLOT;
      r->iovs[i].iov_len = RECV_SLOT;
      struct msghdr *h = &r->msgs[i].msg_hdr;
      h->msg_name = &r->names[i];
      h->msg_namelen = sizeof r->names[i];
      h->msg_iov = &r->iovs[i];
      h->msg_iovlen = 1;
      h->msg_control = r->controls[i].buf;
      h->msg_controllen = sizeof r->controls[i].buf;
      h->msg_flags = 0;
      r->msgs[i].msg_len = 0;
    }
    int n;
    do n = recvmmsg(s->fd, r->msgs, (unsigned)vlen, MSG_DONTWAIT, NULL);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
      break;
    }
    // Pack the reads back to back. Read i sits at slot i, at or after `used`, so moving it down
    // never overwrites a later read.
    size_t base = used;
    for (int i = 0; i < n; i++) {
      size_t len = r->msgs[i].msg_len;
      struct msghdr *h = &r->msgs[i].msg_hdr;
      if (len == 0 || (h->msg_flags & MSG_TRUNC) != 0) continue;  // nothing a QUIC peer sends
      uint8_t *at = r->data + base + (size_t)i * RECV_SLOT;
      if (at != r->data + used) memmove(r->data + used, at, len);
      int segment = r->gro ? gro_segment(h) : 0;
      size_t step = segment > 0 && (size_t)segment < len ? (size_t)segment : len;
      uint32_t *first = r->srcs + (size_t)count * SOURCE_WORDS;
      encode_source(&r->names[i], first);
      size_t offset = 0;
      // More segments than entries left (a tiny segment size) are dropped, like any UDP loss.
      while (offset < len && count < RECV_MAX_DATAGRAMS) {
        size_t part = len - offset < step ? len - offset : step;
        uint32_t *words = r->srcs + (size_t)count * SOURCE_WORDS;
        if (words != first) memcpy(words, first, SOURCE_WORDS * sizeof *words);
        r->lens[count++] = (uint32_t)part;
        offset += part;
      }
      used += offset;
    }
    if ((size_t)n < vlen) break;  // drained; level-triggered polling brings us back for more
  }
  return count;
}

static void recv_describe(poll_source_t *s, int err, bool fatal, char *msg, size_t size) {
  (void)s;
  snprintf(msg, size, "receive UDP: %s%s", strerror(err), fatal ? " (receiving stopped)" : "");
}

static const poll_source_kind_t RECV_KIND = {
    .drain = recv_drain,
    .fatal = recv_error_is_fatal,
    .describe = recv_describe,
    .before_close = recv_before_close,
    .resource = "vibepn_udp_receive",
    .setup_failed = ADDON_NAME ": cannot set up the JS side of the UdpReceiver",
    .poll_what = "poll UDP socket fd",
};

static napi_value recv_new(napi_env env, napi_callback_info info) {
  napi_value argv[2], self;
  CHECK(get_args(env, info, 2, argv, &self));
  int32_t socket_fd = -1;
  if (napi_get_value_int32(env, argv[0], &socket_fd) != napi_ok || socket_fd < 0 || !is_function(env, argv[1])) {
    return throw_type_error(env, "usage: new UdpReceiver(fd: number, onBatch: (count, error?) => void) with the fd of a bound UDP socket");
  }

  // JS objects first: until the fd exists a failure leaves nothing to clean up.
  void *data, *lens, *srcs;
  napi_value buffer, lengths, sources;
  CHECK(new_typed_array(env, napi_uint8_array, RECV_BUFFER, 1, &data, &buffer));
  CHECK(new_typed_array(env, napi_uint32_array, RECV_MAX_DATAGRAMS, sizeof(uint32_t), &lens, &lengths));
  CHECK(new_typed_array(env, napi_uint32_array, RECV_MAX_DATAGRAMS * SOURCE_WORDS, sizeof(uint32_t), &srcs, &sources));

  // A dup, not the fd itself: libuv allows one watcher per fd per loop, and node's dgram handle
  // keeps its own registration (for its sends) on the original.
  int fd = fcntl(socket_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "dup UDP socket fd", errno);
  udp_receiver_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    close(fd);
    return throw_errno(env, "allocate UdpReceiver", ENOMEM);
  }
  r->data = data;
  r->lens = lens;
  r->srcs = srcs;
  int on = 1;
  // Refused by kernels before 5.0: then every read is one datagram.
  r->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
  if (!poll_source_wrap(env, self, &r->src, &RECV_KIND, fd)) return NULL;
  napi_value gro;
  napi_status prepared = napi_get_boolean(env, r->gro, &gro);
  const js_property_t props[] = {{"gro", gro}, {"buffer", buffer}, {"lengths", lengths}, {"sources", sources}};
  return poll_source_start(env, &r->src, prepared, self, argv[1], props, COUNT_OF(props));
}

static udp_receiver_t *recv_unwrap(napi_env env, napi_callback_info info, size_t argc, napi_value *argv) {
  return unwrap_this(env, info, argc, argv, ADDON_NAME ": method called on something that is not a UdpReceiver");
}

// host(i): datagram i's source address formatted as node's dgram does (uv_ip*_name, and
// "%<interface>" on a scoped link-local IPv6), so the endpoint sees the hosts it always saw.
static napi_value recv_host(napi_env env, napi_callback_info info) {
  napi_value arg;
  udp_receiver_t *r = recv_unwrap(env, info, 1, &arg);
  if (r == NULL) return NULL;
  uint32_t index;
  if (napi_get_value_uint32(env, arg, &index) != napi_ok || index >= RECV_MAX_DATAGRAMS) {
    napi_throw_range_error(env, NULL, "usage: receiver.host(index) with an index below the batch's count");
    return NULL;
  }
  const uint32_t *words = r->srcs + (size_t)index * SOURCE_WORDS;
  char host[INET6_ADDRSTRLEN + 1 + UV_IF_NAMESIZE] = "";
  int rc;
  if ((words[4] & SOURCE_IPV6) == 0) {
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof v4);
    v4.sin_family = AF_INET;
    memcpy(&v4.sin_addr, words, 4);
    rc = uv_ip4_name(&v4, host, sizeof host);
  } else {
    struct sockaddr_in6 v6;
    memset(&v6, 0, sizeof v6);
    v6.sin6_family = AF_INET6;
    memcpy(&v6.sin6_addr, words, 16);
    rc = uv_ip6_name(&v6, host, sizeof host);
    if (rc == 0 && words[5] != 0 && IN6_IS_ADDR_LINKLOCAL(&v6.sin6_addr)) {
      char scope[UV_IF_NAMESIZE];
      size_t scope_len = sizeof scope;
      size_t host_len = strlen(host);
      if (uv_if_indextoiid(words[5], scope, &scope_len) == 0 && host_len + 1 + scope_len < sizeof host) {
        snprintf(host + host_len, sizeof host - host_len, "%%%s", scope);
      }
    }
  }
  if (rc != 0) return throw_errno(env, "format UDP source address", -rc);
  return string_value(env, host);
}

static napi_value recv_close(napi_env env, napi_callback_info info) {
  return poll_source_close(env, recv_unwrap(env, info, 0, NULL));
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor send_methods[] = {METHOD("send", udp_send)};
  napi_property_descriptor recv_methods[] = {METHOD("host", recv_host), METHOD("close", recv_close)};
  napi_value sender, receiver;
  CHECK(napi_define_class(env, "UdpSender", NAPI_AUTO_LENGTH, udp_new, NULL, COUNT_OF(send_methods), send_methods, &sender));
  CHECK(napi_set_named_property(env, exports, "UdpSender", sender));
  CHECK(napi_define_class(env, "UdpReceiver", NAPI_AUTO_LENGTH, recv_new, NULL, COUNT_OF(recv_methods), recv_methods, &receiver));
  CHECK(napi_set_named_property(env, exports, "UdpReceiver", receiver));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
