// Linux TUN device for vibepn: one non-blocking fd watched by libuv, packets moved in batches.
//
// Why batches: a JS call costs far more than a read() or write(), so the poll callback drains
// the fd into one preallocated buffer and crosses into JS once per batch, and JS hands over a
// whole batch of outgoing packets in one call. No threads: the fd is non-blocking and libuv
// tells us when it is readable.
//
// JS surface (wrapped by src/tun/device.ts):
//   new Tun(name, onBatch(count, error?))   name may contain %d for a kernel-assigned number
//   tun.name / tun.buffer (Uint8Array, reused) / tun.lengths (Uint32Array, reused)
//   tun.write(packet) -> bool      tun.writeBatch(packets, count) -> written
//   tun.takeWriteError() -> string | undefined     tun.close()
// plus the rtnetlink calls that configure the interface (netlink_js.c).
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/if_tun.h>

#include "netlink_js.h"

#define MAX_BATCH 256
#define MAX_PACKET 65535
#define READ_BUFFER (1024 * 1024)

typedef struct {
  int fd;
  char name[IFNAMSIZ];
  uv_poll_t poll;
  bool handle_open;  // uv_close() callback not yet run: the struct must outlive it
  bool finalized;    // JS wrapper collected (or env torn down)
  napi_env env;
  napi_ref self;     // strong while open, so a device that can still deliver packets is never collected
  napi_ref callback;
  napi_ref buffer;
  napi_ref lengths;
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
  uint8_t *data;
  uint32_t *lens;
  int write_errno;   // first non-EAGAIN write failure since the last takeWriteError()
} tun_t;

// For N-API calls that fail only on misuse or exhaustion; the message names the call.
#define CHECK(call) \
  do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "vibepn_tun: " #call " failed"); return NULL; } } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[128], code[32];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name_r(-err, code, sizeof code), msg);
  return NULL;
}

static void on_poll_closed(uv_handle_t *handle) {
  tun_t *t = handle->data;
  t->handle_open = false;
  if (t->cleanup != NULL) {
    napi_remove_async_cleanup_hook(t->cleanup);
    t->cleanup = NULL;
  }
  if (t->finalized) free(t);
}

// Stops the poll and closes the fd; touches no JS, so env teardown can call it. Idempotent.
static void tun_shutdown(tun_t *t) {
  if (t->fd < 0) return;
  if (t->handle_open) {
    uv_poll_stop(&t->poll);
    uv_close((uv_handle_t *)&t->poll, on_poll_closed);
  }
  close(t->fd);  // last fd of a non-persistent TUN: the kernel deletes the interface
  t->fd = -1;
}

static void release_js(napi_env env, tun_t *t) {
  napi_ref *refs[] = {&t->self, &t->callback, &t->buffer, &t->lengths};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i] != NULL) napi_delete_reference(env, *refs[i]);
    *refs[i] = NULL;
  }
  if (t->async != NULL) napi_async_destroy(env, t->async);
  t->async = NULL;
}

static void on_env_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;  // removed in on_poll_closed once libuv has let go of the handle
  tun_shutdown(arg);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  tun_t *t = data;
  tun_shutdown(t);
  release_js(env, t);
  t->finalized = true;
  if (!t->handle_open) free(t);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  tun_t *t = handle->data;
  uint32_t count = 0;
  size_t used = 0;
  int err = status < 0 ? -status : 0;
  // Cap the batch so a flood cannot starve the rest of the loop; level-triggered polling
  // brings us back for whatever is left.
  while (err == 0 && t->fd >= 0 && count < MAX_BATCH && READ_BUFFER - used >= MAX_PACKET) {
    ssize_t n = read(t->fd, t->data + used, MAX_PACKET);
    if (n > 0) {
      t->lens[count++] = (uint32_t)n;
      used += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
    break;
  }
  // A failing fd (interface deleted under us) stays readable forever; stop instead of spinning.
  if (err != 0) uv_poll_stop(handle);
  if (count == 0 && err == 0) return;

  napi_env env = t->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value self, cb, argv[2], result;
  char msg[128] = "";
  if (err != 0) snprintf(msg, sizeof msg, "read %s: %s", t->name, strerror(err));
  if (napi_get_reference_value(env, t->self, &self) == napi_ok &&
      napi_get_reference_value(env, t->callback, &cb) == napi_ok &&
      napi_create_uint32(env, count, &argv[0]) == napi_ok &&
      (err != 0 ? napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &argv[1])
                : napi_get_undefined(env, &argv[1])) == napi_ok) {
    // make_callback (not call_function) so promise jobs queued by the handler run afterwards.
    if (napi_make_callback(env, t->async, self, cb, 2, argv, &result) == napi_pending_exception) {
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

static napi_value tun_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  char name[IFNAMSIZ + 1];
  size_t name_len = 0;
  napi_valuetype cb_type = napi_undefined;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok ||
      napi_typeof(env, argv[1], &cb_type) != napi_ok || cb_type != napi_function) {
    napi_throw_type_error(env, NULL, "usage: new Tun(name: string, onBatch: (count, error?) => void)");
    return NULL;
  }
  if (name_len >= IFNAMSIZ) {
    napi_throw_range_error(env, "ENAMETOOLONG", "TUN interface name is longer than 15 bytes");
    return NULL;
  }

  // JS objects first: until the fd exists a failure leaves nothing to clean up.
  void *data, *lens;
  napi_value buffer_ab, buffer, lengths_ab, lengths, resource_name;
  CHECK(napi_create_arraybuffer(env, READ_BUFFER, &data, &buffer_ab));
  CHECK(napi_create_typedarray(env, napi_uint8_array, READ_BUFFER, buffer_ab, 0, &buffer));
  CHECK(napi_create_arraybuffer(env, MAX_BATCH * sizeof(uint32_t), &lens, &lengths_ab));
  CHECK(napi_create_typedarray(env, napi_uint32_array, MAX_BATCH, lengths_ab, 0, &lengths));
  CHECK(napi_create_string_utf8(env, "vibepn_tun", NAPI_AUTO_LENGTH, &resource_name));

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, name_len);
  const char *failed = NULL;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) failed = "TUNSETIFF";
  // A device left persistent by another tool would otherwise outlive us.
  else if (ioctl(fd, TUNSETPERSIST, 0) < 0) failed = "TUNSETPERSIST";
  tun_t *t = failed != NULL ? NULL : calloc(1, sizeof *t);
  if (t == NULL) {
    int e = failed != NULL ? errno : ENOMEM;
    close(fd);
    char what[64];
    snprintf(what, sizeof what, "%s %s", failed != NULL ? failed : "allocate state for", name);
    return throw_errno(env, what, e);
  }
  t->fd = fd;
  t->env = env;
  t->data = data;
  t->lens = lens;
  memcpy(t->name, ifr.ifr_name, IFNAMSIZ - 1);
  if (napi_wrap(env, self, t, finalize, NULL, NULL) != napi_ok) {
    close(fd);
    free(t);
    napi_throw_error(env, NULL, "vibepn_tun: napi_wrap failed");
    return NULL;
  }
  // From here the finalizer owns t; a failure only needs the fd closed.
  napi_value actual_name;
  if (napi_create_reference(env, self, 1, &t->self) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &t->callback) != napi_ok ||
      napi_create_reference(env, buffer, 1, &t->buffer) != napi_ok ||
      napi_create_reference(env, lengths, 1, &t->lengths) != napi_ok ||
      napi_async_init(env, NULL, resource_name, &t->async) != napi_ok ||
      napi_create_string_utf8(env, t->name, NAPI_AUTO_LENGTH, &actual_name) != napi_ok ||
      napi_set_named_property(env, self, "name", actual_name) != napi_ok ||
      napi_set_named_property(env, self, "buffer", buffer) != napi_ok ||
      napi_set_named_property(env, self, "lengths", lengths) != napi_ok) {
    tun_shutdown(t);
    release_js(env, t);
    napi_throw_error(env, NULL, "vibepn_tun: cannot set up the JS side of the device");
    return NULL;
  }

  uv_loop_t *loop;
  int rc = napi_get_uv_event_loop(env, &loop) == napi_ok ? uv_poll_init(loop, &t->poll, fd) : UV_EINVAL;
  if (rc == 0) {
    t->handle_open = true;
    t->poll.data = t;
    rc = uv_poll_start(&t->poll, UV_READABLE, on_readable);
  }
  if (rc == 0 && napi_add_async_cleanup_hook(env, on_env_teardown, t, &t->cleanup) != napi_ok) rc = UV_ENOMEM;
  if (rc != 0) {
    tun_shutdown(t);
    release_js(env, t);
    return throw_errno(env, "poll TUN fd", -rc);
  }
  return self;
}

static tun_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *t = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok || napi_unwrap(env, self, &t) != napi_ok) {
    napi_throw_type_error(env, NULL, "vibepn_tun: method called on something that is not a Tun");
    return NULL;
  }
  return t;
}

// 0 if written, else the errno; -1 if `packet` is not a Uint8Array (a TypeError is pending).
static int write_packet(napi_env env, tun_t *t, napi_value packet) {
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, packet, &type, &len, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "vibepn_tun: packets must be Uint8Array");
    return -1;
  }
  if (t->fd < 0) return EBADF;
  ssize_t n;
  do n = write(t->fd, data, len);
  while (n < 0 && errno == EINTR);
  if (n >= 0) return 0;
  if (errno != EAGAIN && errno != EWOULDBLOCK && t->write_errno == 0) t->write_errno = errno;
  return errno;
}

// One JS->C call per batch. EAGAIN means the kernel queue is full: stop rather than spin, the
// caller counts the rest as dropped. Any other error drops just that packet.
static napi_value tun_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  tun_t *t = unwrap(env, info, &argc, argv);
  if (t == NULL) return NULL;
  uint32_t count = 0, length = 0;
  if (argc < 2 || napi_get_array_length(env, argv[0], &length) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "usage: tun.writeBatch(packets: Uint8Array[], count: number)");
    return NULL;
  }
  uint32_t written = 0;
  for (uint32_t i = 0; i < count && i < length; i++) {
    napi_value packet;
    CHECK(napi_get_element(env, argv[0], i, &packet));
    int err = write_packet(env, t, packet);
    if (err < 0) return NULL;
    if (err == 0) written++;
    if (err == EAGAIN || err == EWOULDBLOCK || err == EBADF) break;
  }
  CHECK(napi_create_uint32(env, written, &result));
  return result;
}

static napi_value tun_write(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  tun_t *t = unwrap(env, info, &argc, argv);
  if (t == NULL) return NULL;
  int err = write_packet(env, t, argv[0]);  // a missing argument arrives as undefined
  if (err < 0) return NULL;
  CHECK(napi_get_boolean(env, err == 0, &result));
  return result;
}

static napi_value tun_take_write_error(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value result;
  tun_t *t = unwrap(env, info, &argc, NULL);
  if (t == NULL) return NULL;
  if (t->write_errno == 0) {
    CHECK(napi_get_undefined(env, &result));
  } else {
    char msg[128];
    snprintf(msg, sizeof msg, "write %s: %s", t->name, strerror(t->write_errno));
    t->write_errno = 0;
    CHECK(napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &result));
  }
  return result;
}

static napi_value tun_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_t *t = unwrap(env, info, &argc, NULL);
  if (t == NULL) return NULL;
  tun_shutdown(t);
  release_js(env, t);
  return NULL;
}


static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"write", NULL, tun_write, NULL, NULL, NULL, napi_default, NULL},
      {"writeBatch", NULL, tun_write_batch, NULL, NULL, NULL, napi_default, NULL},
      {"takeWriteError", NULL, tun_take_write_error, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, tun_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  CHECK(napi_define_class(env, "Tun", NAPI_AUTO_LENGTH, tun_new, NULL, sizeof methods / sizeof methods[0], methods, &cls));
  CHECK(napi_set_named_property(env, exports, "Tun", cls));
  CHECK(netlink_js_init(env, exports));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
