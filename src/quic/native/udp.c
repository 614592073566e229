// Batched UDP sends for the QUIC endpoint (src/quic/batch-send.ts).
//
// Why: node's dgram costs a JS->C++ call, a send request and a sendmsg() per datagram, which was
// a quarter of the QUIC sender's CPU. Here a whole flush of datagrams goes out in one call, and
// runs of equal-size datagrams in one sendmsg() with UDP GSO (the kernel splits them; Linux 4.18+).
//
// JS surface:
//   new UdpSender(fd)                       fd of a bound UDP socket owned by node's dgram
//   sender.send(buffer, lengths, count, host, port) -> datagrams handed to the kernel
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>

// For N-API calls that fail only on misuse or exhaustion; the message names the call.
#define CHECK(call) \
  do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "vibepn_udp: " #call " failed"); return NULL; } } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[128], code[32];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name_r(-err, code, sizeof code), msg);
  return NULL;
}

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
  size_t argc = 1;
  napi_value argv[1], self;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "usage: new UdpSender(fd: number) with the fd of a bound UDP socket");
    return NULL;
  }
  udp_sender_t *u = calloc(1, sizeof *u);
  if (u == NULL) return throw_errno(env, "allocate UdpSender", ENOMEM);
  u->fd = fd;
  u->gso = true;
  if (napi_wrap(env, self, u, udp_finalize, NULL, NULL) != napi_ok) {
    free(u);
    napi_throw_error(env, NULL, "vibepn_udp: napi_wrap failed");
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
  size_t argc = 5;
  napi_value argv[5], self, result;
  void *unwrapped = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (napi_unwrap(env, self, &unwrapped) != napi_ok) {
    napi_throw_type_error(env, NULL, "vibepn_udp: send called on something that is not a UdpSender");
    return NULL;
  }
  udp_sender_t *u = unwrapped;
  napi_typedarray_type buffer_type, lengths_type;
  size_t buffer_len, lengths_len;
  void *buffer_data, *lengths_data;
  uint32_t count, port;
  char host[INET6_ADDRSTRLEN + 1];
  size_t host_len;
  if (argc < 5 ||
      napi_get_typedarray_info(env, argv[0], &buffer_type, &buffer_len, &buffer_data, NULL, NULL) != napi_ok ||
      buffer_type != napi_uint8_array ||
      napi_get_typedarray_info(env, argv[1], &lengths_type, &lengths_len, &lengths_data, NULL, NULL) != napi_ok ||
      lengths_type != napi_uint32_array || napi_get_value_uint32(env, argv[2], &count) != napi_ok ||
      napi_get_value_string_utf8(env, argv[3], host, sizeof host, &host_len) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &port) != napi_ok || port > 65535 || count > lengths_len) {
    napi_throw_type_error(env, NULL, "usage: sender.send(buffer: Uint8Array, lengths: Uint32Array, count, host, port)");
    return NULL;
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
    napi_throw_type_error(env, NULL, "vibepn_udp: UdpSender.send host must be an IP address literal");
    return NULL;
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
  CHECK(napi_create_uint32(env, sent, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"send", NULL, udp_send, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  CHECK(napi_define_class(env, "UdpSender", NAPI_AUTO_LENGTH, udp_new, NULL, 1, methods, &cls));
  CHECK(napi_set_named_property(env, exports, "UdpSender", cls));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
