// N-API helpers shared by the project's addons (src/tun/native, src/quic/native), so argument
// handling, reused arrays and error throwing read the same and fail the same way in both.
//
// Define ADDON_NAME (a string literal, e.g. "vibepn_tun") before including: internal failures
// name the addon, so a report says which .node file it came from.
#ifndef VIBEPN_NAPI_UTIL_H
#define VIBEPN_NAPI_UTIL_H

#ifndef ADDON_NAME
#error "define ADDON_NAME before including napi_util.h"
#endif

#include <node_api.h>
#include <uv.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

// For N-API calls that fail only on misuse or exhaustion; the message names the call.
#define CHECK(call) \
  do { if ((call) != napi_ok) { napi_throw_error(env, NULL, ADDON_NAME ": " #call " failed"); return NULL; } } while (0)

#define METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}
#define COUNT_OF(array) (sizeof (array) / sizeof (array)[0])

// The errno name goes into `code` so JS can branch on it without parsing the message.
static inline napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[128], code[32];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name_r(-err, code, sizeof code), msg);
  return NULL;
}

static inline napi_value throw_type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

// `this` and the first `argc` arguments, undefined where fewer were passed: every value getter
// and type check refuses undefined, so callers need no count check of their own.
static inline napi_status get_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, napi_value *self) {
  return napi_get_cb_info(env, info, &argc, argv, self, NULL);
}

// The struct napi_wrap'ped into `this`, with get_args' arguments; NULL with `not_this` pending
// as a TypeError when `this` holds none.
static inline void *unwrap_this(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, const char *not_this) {
  napi_value self;
  void *native = NULL;
  if (get_args(env, info, argc, argv, &self) != napi_ok || napi_unwrap(env, self, &native) != napi_ok) {
    napi_throw_type_error(env, NULL, not_this);
    return NULL;
  }
  return native;
}

static inline bool is_function(napi_env env, napi_value value) {
  napi_valuetype type = napi_undefined;
  return napi_typeof(env, value, &type) == napi_ok && type == napi_function;
}

// A typed array over fresh memory that C fills and JS reads in place, batch after batch.
static inline napi_status new_typed_array(napi_env env, napi_typedarray_type type, size_t length, size_t element_size,
                                          void **data, napi_value *array) {
  napi_value arraybuffer;
  napi_status status = napi_create_arraybuffer(env, length * element_size, data, &arraybuffer);
  return status != napi_ok ? status : napi_create_typedarray(env, type, length, arraybuffer, 0, array);
}

// The memory behind a typed array argument of type `want`; false (nothing thrown) for anything
// else, so the caller throws its own usage message.
static inline bool get_typed_array(napi_env env, napi_value value, napi_typedarray_type want, void **data, size_t *length) {
  napi_typedarray_type type;
  return napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) == napi_ok && type == want;
}

static inline napi_value uint32_value(napi_env env, uint32_t value) {
  napi_value result;
  CHECK(napi_create_uint32(env, value, &result));
  return result;
}

static inline napi_value string_value(napi_env env, const char *text) {
  napi_value result;
  CHECK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &result));
  return result;
}

#endif
