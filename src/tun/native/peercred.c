// peerCredentials(fd) -> { pid, uid, gid } of the process at the other end of a connected Unix
// socket (SO_PEERCRED), exported by vibepn_tun: the control socket lets a configured group run
// read-only commands, and only this tells it who is asking (node's net module does not).
// Throws with `code` set to the errno name when the fd is not a connected Unix socket.
#define _GNU_SOURCE // struct ucred
#define NAPI_VERSION 8
#define ADDON_NAME "vibepn_tun"
#include "peercred.h"

#include "napi_util.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>

static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_type_error(env, "peerCredentials(fd): fd must be a non-negative integer");
  struct ucred cred;
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
  napi_value out, value;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, (int32_t)cred.pid, &value));
  CHECK(napi_set_named_property(env, out, "pid", value));
  CHECK(napi_create_uint32(env, (uint32_t)cred.uid, &value));
  CHECK(napi_set_named_property(env, out, "uid", value));
  CHECK(napi_create_uint32(env, (uint32_t)cred.gid, &value));
  CHECK(napi_set_named_property(env, out, "gid", value));
  return out;
}

napi_status peercred_js_init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_status status = napi_create_function(env, "peerCredentials", NAPI_AUTO_LENGTH, peer_credentials, NULL, &fn);
  if (status != napi_ok) return status;
  return napi_set_named_property(env, exports, "peerCredentials", fn);
}
