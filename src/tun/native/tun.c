// Linux TUN device for vibepn: one non-blocking fd watched by libuv, packets moved in batches.
//
// Why batches: a JS call costs far more than a read() or write(), so the poll callback drains
// the fd into one preallocated buffer and crosses into JS once per batch, and JS hands over a
// whole batch of outgoing packets in one call. No threads: the fd is non-blocking and libuv
// tells us when it is readable.
//
// JS surface (wrapped by src/tun/device.ts):
//   new Tun(name, onBatch(count, error?), offload?)   name may contain %d for a kernel-assigned number
//   tun.name / tun.buffer (Uint8Array, reused) / tun.lengths (Uint32Array, reused)
//   tun.offload (bool): reads and writes carry a 10-byte virtio_net_hdr (IFF_VNET_HDR), and the
//     kernel hands over TCP super-segments (TSO4/TSO6) with partial checksums (TUN_F_CSUM);
//     a kernel that refuses TUNSETOFFLOAD fails the open (the caller retries without offload);
//     tun.uso (bool): UDP super-datagrams too (TUN_F_USO4/USO6, Linux 6.2+), where the kernel has them
//   tun.write(packet) -> bool      tun.writeBatch(packets, count, status?, headers?) -> written
//     with offload, packet i is written behind headers[10 i..10 i + 10] (zeros when absent)
//   tun.takeWriteError() -> string | undefined     tun.close()
// plus the rtnetlink calls that configure the interface (netlink_js.c).
#define NAPI_VERSION 8
#define ADDON_NAME "vibepn_tun"
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <net/if.h>
#include <linux/if_tun.h>

#include "netlink_js.h"
#include "peercred.h"
#include "poll_source.h"

// linux/if_tun.h has these from 6.2; older headers still build, and such a kernel refuses them.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

#define MAX_BATCH 256
#define MAX_PACKET 65535
#define VNET_HDR 10        // struct virtio_net_hdr, the TUN default vnet_hdr_sz
#define MAX_READ (VNET_HDR + MAX_PACKET)
#define READ_BUFFER (1024 * 1024)

typedef struct {
  poll_source_t src;  // first: the struct is freed and unwrapped through it
  char name[IFNAMSIZ];
  uint8_t *data;
  uint32_t *lens;
  int write_errno;   // first non-EAGAIN write failure since the last takeWriteError()
  bool offload;      // IFF_VNET_HDR with TSO and checksum offload accepted by the kernel
} tun_t;

static const uint8_t NO_VNET_HDR[VNET_HDR];  // gso none, no checksum to finish

static uint32_t tun_drain(poll_source_t *s, int *err) {
  tun_t *t = (tun_t *)s;
  uint32_t count = 0;
  size_t used = 0;
  // Cap the batch so a flood cannot starve the rest of the loop; level-triggered polling
  // brings us back for whatever is left.
  while (count < MAX_BATCH && READ_BUFFER - used >= MAX_READ) {
    ssize_t n = read(s->fd, t->data + used, MAX_READ);
    if (n > 0) {
      t->lens[count++] = (uint32_t)n;
      used += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
    break;
  }
  return count;
}

static void tun_describe(poll_source_t *s, int err, bool fatal, char *msg, size_t size) {
  (void)fatal;  // always true for a TUN fd, see TUN_KIND
  snprintf(msg, size, "read %s: %s", ((tun_t *)s)->name, strerror(err));
}

// No .fatal: a failing fd (interface deleted under us) stays readable forever, so any read
// error stops the poll instead of spinning.
static const poll_source_kind_t TUN_KIND = {
    .drain = tun_drain,
    .describe = tun_describe,
    .resource = ADDON_NAME,
    .setup_failed = ADDON_NAME ": cannot set up the JS side of the device",
    .poll_what = "poll TUN fd",
};

static napi_value tun_new(napi_env env, napi_callback_info info) {
  napi_value argv[3], self;
  CHECK(get_args(env, info, 3, argv, &self));
  bool want_offload = false;
  napi_valuetype offload_type;
  CHECK(napi_typeof(env, argv[2], &offload_type));
  if (offload_type == napi_boolean) CHECK(napi_get_value_bool(env, argv[2], &want_offload));
  char name[IFNAMSIZ + 1];
  size_t name_len = 0;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok ||
      !is_function(env, argv[1])) {
    return throw_type_error(env, "usage: new Tun(name: string, onBatch: (count, error?) => void)");
  }
  if (name_len >= IFNAMSIZ) {
    napi_throw_range_error(env, "ENAMETOOLONG", "TUN interface name is longer than 15 bytes");
    return NULL;
  }

  // JS objects first: until the fd exists a failure leaves nothing to clean up.
  void *data, *lens;
  napi_value buffer, lengths;
  CHECK(new_typed_array(env, napi_uint8_array, READ_BUFFER, 1, &data, &buffer));
  CHECK(new_typed_array(env, napi_uint32_array, MAX_BATCH, sizeof(uint32_t), &lens, &lengths));

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (want_offload ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name, name_len);
  const char *failed = NULL;
  bool offload = false;
  bool uso = false;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) failed = "TUNSETIFF";
  // A device left persistent by another tool would otherwise outlive us.
  else if (ioctl(fd, TUNSETPERSIST, 0) < 0) failed = "TUNSETPERSIST";
  // The header stays even if the kernel refuses the offloads: it then only says "gso none".
  // USO first: a kernel before 6.2 refuses the unknown flags with EINVAL, and gets TSO alone.
  else if (want_offload && !(uso = ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6) == 0) &&
           ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0)
    failed = "TUNSETOFFLOAD";
  offload = want_offload && failed == NULL;
  uso = uso && offload;
  tun_t *t = failed != NULL ? NULL : calloc(1, sizeof *t);
  if (t == NULL) {
    int e = failed != NULL ? errno : ENOMEM;
    close(fd);
    char what[64];
    snprintf(what, sizeof what, "%s %s", failed != NULL ? failed : "allocate state for", name);
    return throw_errno(env, what, e);
  }
  t->data = data;
  t->lens = lens;
  t->offload = offload;
  memcpy(t->name, ifr.ifr_name, IFNAMSIZ - 1);
  if (!poll_source_wrap(env, self, &t->src, &TUN_KIND, fd)) return NULL;
  napi_value actual_name;
  napi_value offload_value, uso_value;
  napi_status prepared = napi_create_string_utf8(env, t->name, NAPI_AUTO_LENGTH, &actual_name);
  if (prepared == napi_ok) prepared = napi_get_boolean(env, offload, &offload_value);
  if (prepared == napi_ok) prepared = napi_get_boolean(env, uso, &uso_value);
  const js_property_t props[] = {{"name", actual_name}, {"buffer", buffer}, {"lengths", lengths}, {"offload", offload_value}, {"uso", uso_value}};
  return poll_source_start(env, &t->src, prepared, self, argv[1], props, COUNT_OF(props));
}

static tun_t *unwrap(napi_env env, napi_callback_info info, size_t argc, napi_value *argv) {
  return unwrap_this(env, info, argc, argv, ADDON_NAME ": method called on something that is not a Tun");
}

// 0 if written, else the errno; -1 if `packet` is not a Uint8Array (a TypeError is pending).
// With offload the packet goes behind `vnet` (VNET_HDR bytes; NULL: no offload asked).
static int write_packet(napi_env env, tun_t *t, napi_value packet, const uint8_t *vnet) {
  size_t len;
  void *data;
  if (!get_typed_array(env, packet, napi_uint8_array, &data, &len)) {
    throw_type_error(env, ADDON_NAME ": packets must be Uint8Array");
    return -1;
  }
  if (t->src.fd < 0) return EBADF;
  ssize_t n;
  if (t->offload) {
    struct iovec iov[2] = {{(void *)(vnet != NULL ? vnet : NO_VNET_HDR), VNET_HDR}, {data, len}};
    do n = writev(t->src.fd, iov, 2);
    while (n < 0 && errno == EINTR);
  } else {
    do n = write(t->src.fd, data, len);
    while (n < 0 && errno == EINTR);
  }
  if (n >= 0) return 0;
  if (errno != EAGAIN && errno != EWOULDBLOCK && t->write_errno == 0) t->write_errno = errno;
  return errno;
}

#define WRITE_BATCH_USAGE "usage: tun.writeBatch(packets: Uint8Array[], count: number, status?: Uint8Array, headers?: Uint8Array)"

// An optional Uint8Array argument: undefined leaves *data NULL; false for anything else.
static bool optional_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_undefined) return true;
  void *bytes;
  if (!get_typed_array(env, value, napi_uint8_array, &bytes, length)) return false;
  *data = bytes;
  return true;
}

// One JS->C call per batch. EAGAIN means the kernel queue is full: stop rather than spin, the
// caller counts the rest as dropped. Any other error drops just that packet. An optional
// Uint8Array `status` gets 1 for each packet written and 0 for each dropped one, so the caller
// can count bytes exactly even when a packet in the middle was refused.
static napi_value tun_write_batch(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  tun_t *t = unwrap(env, info, 4, argv);
  if (t == NULL) return NULL;
  uint32_t count = 0, length = 0;
  if (napi_get_array_length(env, argv[0], &length) != napi_ok || napi_get_value_uint32(env, argv[1], &count) != napi_ok) {
    return throw_type_error(env, WRITE_BATCH_USAGE);
  }
  uint8_t *status = NULL, *headers = NULL;
  size_t status_length = 0, headers_length = 0;
  if (!optional_bytes(env, argv[2], &status, &status_length) || !optional_bytes(env, argv[3], &headers, &headers_length)) {
    return throw_type_error(env, WRITE_BATCH_USAGE);
  }
  if (count > length) count = length;
  if (status != NULL && status_length < count) return throw_type_error(env, ADDON_NAME ": status array is shorter than count");
  if (headers != NULL && headers_length < (size_t)count * VNET_HDR) return throw_type_error(env, ADDON_NAME ": headers array is shorter than 10 bytes per packet");
  if (status != NULL) memset(status, 0, count);
  uint32_t written = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value packet;
    CHECK(napi_get_element(env, argv[0], i, &packet));
    int err = write_packet(env, t, packet, headers != NULL ? headers + (size_t)i * VNET_HDR : NULL);
    if (err < 0) return NULL;
    if (err == 0) {
      written++;
      if (status != NULL) status[i] = 1;
    }
    if (err == EAGAIN || err == EWOULDBLOCK || err == EBADF) break;
  }
  return uint32_value(env, written);
}

static napi_value tun_write(napi_env env, napi_callback_info info) {
  napi_value packet, result;
  tun_t *t = unwrap(env, info, 1, &packet);
  if (t == NULL) return NULL;
  int err = write_packet(env, t, packet, NULL);  // a missing argument arrives as undefined
  if (err < 0) return NULL;
  CHECK(napi_get_boolean(env, err == 0, &result));
  return result;
}

static napi_value tun_take_write_error(napi_env env, napi_callback_info info) {
  tun_t *t = unwrap(env, info, 0, NULL);
  if (t == NULL) return NULL;
  if (t->write_errno == 0) return NULL;  // undefined
  char msg[128];
  snprintf(msg, sizeof msg, "write %s: %s", t->name, strerror(t->write_errno));
  t->write_errno = 0;
  return string_value(env, msg);
}

static napi_value tun_close(napi_env env, napi_callback_info info) {
  return poll_source_close(env, unwrap(env, info, 0, NULL));
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      METHOD("write", tun_write),
      METHOD("writeBatch", tun_write_batch),
      METHOD("takeWriteError", tun_take_write_error),
      METHOD("close", tun_close),
  };
  napi_value cls;
  CHECK(napi_define_class(env, "Tun", NAPI_AUTO_LENGTH, tun_new, NULL, COUNT_OF(methods), methods, &cls));
  CHECK(napi_set_named_property(env, exports, "Tun", cls));
  CHECK(netlink_js_init(env, exports));
  CHECK(peercred_js_init(env, exports));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
