// A non-blocking fd watched by libuv whose reads cross into JS in batches, as onBatch(count,
// error?), and the lifecycle it shares with its JS wrapper. The TUN device and the UDP receiver
// are both one of these: only how they read and how they word a failure differ (the kind).
//
// Why the care: the struct must outlive both the JS object (which may be collected first) and
// libuv's handle (whose close completes a loop turn later), and env teardown may end everything
// without any JS running. Whichever of finalize and on_closed comes second frees it.
#ifndef VIBEPN_POLL_SOURCE_H
#define VIBEPN_POLL_SOURCE_H

#include "napi_util.h"

#include <stdlib.h>
#include <unistd.h>

#define POLL_SOURCE_MAX_KEPT 4  // arrays per source; more fails the setup rather than go unreferenced

typedef struct poll_source poll_source_t;

typedef struct {
  // Reads what is ready into the arrays JS reads from; returns how many entries it filled and
  // sets *err to the errno of a failed read (EAGAIN is no failure).
  uint32_t (*drain)(poll_source_t *s, int *err);
  // Whether the fd will fail again at once after `err`, so polling must stop instead of
  // spinning; NULL: after any error.
  bool (*fatal)(int err);
  // The message onBatch gets with the batch after `err`; `fatal`: polling has stopped.
  void (*describe)(poll_source_t *s, int err, bool fatal, char *msg, size_t size);
  // For an fd shared with others: undo what this source set on it. NULL: nothing to undo.
  void (*before_close)(poll_source_t *s);
  const char *resource;      // async_hooks resource name of the onBatch calls
  const char *setup_failed;  // thrown when the JS side cannot be set up
  const char *poll_what;     // names the step when libuv refuses the fd
} poll_source_kind_t;

// The first member of the addon's struct: it is freed, wrapped and unwrapped through a pointer
// to this.
struct poll_source {
  const poll_source_kind_t *kind;
  int fd;
  uv_poll_t poll;
  bool handle_open;  // uv_close() callback not yet run: the struct must outlive it
  bool finalized;    // JS wrapper collected (or env torn down)
  napi_env env;
  napi_ref self;     // strong while open, so a source that can still deliver is never collected
  napi_ref callback;
  // The arrays C writes into: JS reassigning the property must not free their memory.
  napi_ref kept[POLL_SOURCE_MAX_KEPT];
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
};

typedef struct {
  const char *name;
  napi_value value;
} js_property_t;

static inline void poll_source_on_closed(uv_handle_t *handle) {
  poll_source_t *s = handle->data;
  s->handle_open = false;
  if (s->cleanup != NULL) {
    napi_remove_async_cleanup_hook(s->cleanup);
    s->cleanup = NULL;
  }
  if (s->finalized) free(s);
}

// Stops the poll and closes the fd; touches no JS, so env teardown can call it. Idempotent.
static inline void poll_source_shutdown(poll_source_t *s) {
  if (s->fd < 0) return;
  if (s->handle_open) {
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, poll_source_on_closed);
  }
  if (s->kind->before_close != NULL) s->kind->before_close(s);
  close(s->fd);
  s->fd = -1;
}

static inline void release_ref(napi_env env, napi_ref *ref) {
  if (*ref != NULL) napi_delete_reference(env, *ref);
  *ref = NULL;
}

static inline void poll_source_release_js(napi_env env, poll_source_t *s) {
  release_ref(env, &s->self);
  release_ref(env, &s->callback);
  for (size_t i = 0; i < POLL_SOURCE_MAX_KEPT; i++) release_ref(env, &s->kept[i]);
  if (s->async != NULL) napi_async_destroy(env, s->async);
  s->async = NULL;
}

static inline void poll_source_on_env_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;  // removed in poll_source_on_closed once libuv has let go of the handle
  poll_source_shutdown(arg);
}

static inline void poll_source_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  poll_source_t *s = data;
  poll_source_shutdown(s);
  poll_source_release_js(env, s);
  s->finalized = true;
  if (!s->handle_open) free(s);
}

static inline void poll_source_deliver(poll_source_t *s, uint32_t count, const char *error) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value self, cb, argv[2], result;
  if (napi_get_reference_value(env, s->self, &self) == napi_ok && self != NULL &&
      napi_get_reference_value(env, s->callback, &cb) == napi_ok && cb != NULL &&
      napi_create_uint32(env, count, &argv[0]) == napi_ok &&
      (error != NULL ? napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &argv[1])
                     : napi_get_undefined(env, &argv[1])) == napi_ok) {
    // make_callback (not call_function) so promise jobs queued by the handler run afterwards.
    if (napi_make_callback(env, s->async, self, cb, 2, argv, &result) == napi_pending_exception) {
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

static inline void poll_source_on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  poll_source_t *s = handle->data;
  int err = status < 0 ? -status : 0;
  bool fatal = err != 0;
  uint32_t count = 0;
  if (err == 0 && s->fd >= 0) {
    count = s->kind->drain(s, &err);
    fatal = err != 0 && (s->kind->fatal == NULL || s->kind->fatal(err));
  }
  if (fatal) uv_poll_stop(handle);
  if (count == 0 && err == 0) return;
  char msg[128] = "";
  if (err != 0) s->kind->describe(s, err, fatal, msg, sizeof msg);
  poll_source_deliver(s, count, err != 0 ? msg : NULL);
}

// Hands `fd` and `s` to the JS object `self`, whose finalizer owns them from then on. On failure
// both are gone and an error is pending.
static inline bool poll_source_wrap(napi_env env, napi_value self, poll_source_t *s, const poll_source_kind_t *kind, int fd) {
  s->kind = kind;
  s->fd = fd;
  s->env = env;
  if (napi_wrap(env, self, s, poll_source_finalize, NULL, NULL) == napi_ok) return true;
  poll_source_shutdown(s);
  free(s);
  napi_throw_error(env, NULL, ADDON_NAME ": napi_wrap failed");
  return false;
}

// Ends delivery for good: the fd closed and the JS references dropped, so the object can be
// collected.
static inline void poll_source_stop(napi_env env, poll_source_t *s) {
  poll_source_shutdown(s);
  poll_source_release_js(env, s);
}

// Sets `props` on `self` and starts delivering to `callback`. `prepared` is the status of making
// the props' values, so a failure there fails like any step here. Returns self, or NULL with the
// fd closed and an error pending.
static inline napi_value poll_source_start(napi_env env, poll_source_t *s, napi_status prepared, napi_value self,
                                           napi_value callback, const js_property_t *props, size_t prop_count) {
  napi_value resource_name;
  bool ok = prepared == napi_ok &&
            napi_create_reference(env, self, 1, &s->self) == napi_ok &&
            napi_create_reference(env, callback, 1, &s->callback) == napi_ok &&
            napi_create_string_utf8(env, s->kind->resource, NAPI_AUTO_LENGTH, &resource_name) == napi_ok &&
            napi_async_init(env, NULL, resource_name, &s->async) == napi_ok;
  for (size_t i = 0, kept = 0; ok && i < prop_count; i++) {
    napi_valuetype type;
    ok = napi_typeof(env, props[i].value, &type) == napi_ok &&
         (type != napi_object || (kept < POLL_SOURCE_MAX_KEPT &&
                                  napi_create_reference(env, props[i].value, 1, &s->kept[kept++]) == napi_ok)) &&
         napi_set_named_property(env, self, props[i].name, props[i].value) == napi_ok;
  }
  if (!ok) {
    poll_source_stop(env, s);
    napi_throw_error(env, NULL, s->kind->setup_failed);
    return NULL;
  }

  uv_loop_t *loop;
  int rc = napi_get_uv_event_loop(env, &loop) == napi_ok ? uv_poll_init(loop, &s->poll, s->fd) : UV_EINVAL;
  if (rc == 0) {
    s->handle_open = true;
    s->poll.data = s;
    rc = uv_poll_start(&s->poll, UV_READABLE, poll_source_on_readable);
  }
  if (rc == 0 && napi_add_async_cleanup_hook(env, poll_source_on_env_teardown, s, &s->cleanup) != napi_ok) rc = UV_ENOMEM;
  if (rc != 0) {
    poll_source_stop(env, s);
    return throw_errno(env, s->kind->poll_what, -rc);
  }
  return self;
}

// close() of every poll source's JS object, given what unwrapping `this` gave: the addon's
// struct, or NULL with the TypeError already pending.
static inline napi_value poll_source_close(napi_env env, void *native) {
  if (native != NULL) poll_source_stop(env, native);
  return NULL;
}

#endif
