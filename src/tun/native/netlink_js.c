// JS surface of netlink.h, exported by vibepn_tun next to Tun (wrapped by src/tun/device.ts):
//   setMtu(ifname, mtu)   setAddrGenModeNone(ifname)   setUp(ifname)
//   addAddress(ifname, address, prefixLength)      address: Uint8Array of 4 or 16 bytes
//   replaceRoute(ifname, destination, prefixLength)   deleteRoute(ifname, destination, prefixLength)
// All synchronous: one request and its ACK take microseconds, unlike spawning `ip`. A failure
// throws an Error whose `code` is the errno name (EEXIST, ESRCH, ENODEV, ...) and whose message
// names the operation, the device and the kernel's reason.
#define NAPI_VERSION 8
#define ADDON_NAME "vibepn_tun"
#include "netlink_js.h"

#include <uv.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>

#include "napi_util.h"
#include "netlink.h"

typedef enum { SET_MTU, SET_ADDR_GEN_MODE_NONE, SET_UP, ADD_ADDRESS, REPLACE_ROUTE, DELETE_ROUTE } op_t;

static const struct {
  const char *name;
  const char *usage;
} OPS[] = {
    [SET_MTU] = {"setMtu", "setMtu(ifname: string, mtu: number)"},
    [SET_ADDR_GEN_MODE_NONE] = {"setAddrGenModeNone", "setAddrGenModeNone(ifname: string)"},
    [SET_UP] = {"setUp", "setUp(ifname: string)"},
    [ADD_ADDRESS] = {"addAddress", "addAddress(ifname: string, address: Uint8Array(4|16), prefixLength: number)"},
    [REPLACE_ROUTE] = {"replaceRoute", "replaceRoute(ifname: string, destination: Uint8Array(4|16), prefixLength: number)"},
    [DELETE_ROUTE] = {"deleteRoute", "deleteRoute(ifname: string, destination: Uint8Array(4|16), prefixLength: number)"},
};

typedef struct {
  char ifname[IFNAMSIZ];
  uint32_t mtu;
  int family;
  uint8_t addr[16];
  uint8_t prefix_len;
} args_t;

static bool get_ifname(napi_env env, napi_value value, char ifname[IFNAMSIZ]) {
  char buf[IFNAMSIZ + 1];  // one spare byte so an over-long name shows up as len >= IFNAMSIZ
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, buf, sizeof buf, &len) != napi_ok) return false;
  // An embedded NUL would make the kernel look up a different, shorter name.
  if (len == 0 || len >= IFNAMSIZ || strlen(buf) != len) return false;
  memcpy(ifname, buf, len + 1);
  return true;
}

static bool get_integer(napi_env env, napi_value value, double max, uint32_t *out) {
  napi_valuetype type;
  double d;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number ||
      napi_get_value_double(env, value, &d) != napi_ok)
    return false;
  // The comparisons are false for NaN too.
  if (!(d >= 0 && d <= max) || (double)(uint32_t)d != d) return false;
  *out = (uint32_t)d;
  return true;
}

static bool get_address(napi_env env, napi_value value, args_t *a) {
  size_t len;
  void *data;
  if (!get_typed_array(env, value, napi_uint8_array, &data, &len) || (len != 4 && len != 16)) return false;
  a->family = len == 4 ? AF_INET : AF_INET6;
  memcpy(a->addr, data, len);
  return true;
}

static bool parse(napi_env env, op_t op, size_t argc, napi_value *argv, args_t *a) {
  if (argc < 1 || !get_ifname(env, argv[0], a->ifname)) return false;
  if (op == SET_MTU) return argc >= 2 && get_integer(env, argv[1], UINT32_MAX, &a->mtu);
  if (op == SET_ADDR_GEN_MODE_NONE || op == SET_UP) return true;
  uint32_t prefix_len;
  if (argc < 3 || !get_address(env, argv[1], a) || !get_integer(env, argv[2], a->family == AF_INET ? 32 : 128, &prefix_len)) return false;
  a->prefix_len = (uint8_t)prefix_len;
  return true;
}

static void describe(op_t op, const args_t *a, char *out, size_t size) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (op >= ADD_ADDRESS && inet_ntop(a->family, a->addr, ip, sizeof ip) == NULL) snprintf(ip, sizeof ip, "?");
  switch (op) {
    case SET_MTU: snprintf(out, size, "set mtu %u on %s", (unsigned)a->mtu, a->ifname); break;
    case SET_ADDR_GEN_MODE_NONE: snprintf(out, size, "set addrgenmode none on %s", a->ifname); break;
    case SET_UP: snprintf(out, size, "set %s up", a->ifname); break;
    case ADD_ADDRESS: snprintf(out, size, "add address %s/%u to %s", ip, a->prefix_len, a->ifname); break;
    case REPLACE_ROUTE: snprintf(out, size, "replace route %s/%u dev %s", ip, a->prefix_len, a->ifname); break;
    case DELETE_ROUTE: snprintf(out, size, "delete route %s/%u dev %s", ip, a->prefix_len, a->ifname); break;
  }
}

static int run(op_t op, const args_t *a, char detail[NL_DETAIL_SIZE]) {
  // Resolved per call: a name is what JS holds, and an index cached across calls could outlive
  // the device it named.
  errno = 0;
  unsigned ifindex = if_nametoindex(a->ifname);
  if (ifindex == 0) return errno != 0 ? errno : ENODEV;
  switch (op) {
    case SET_MTU: return nl_set_mtu(ifindex, a->mtu, detail);
    case SET_ADDR_GEN_MODE_NONE: return nl_set_addr_gen_mode_none(ifindex, detail);
    case SET_UP: return nl_set_up(ifindex, detail);
    case ADD_ADDRESS: return nl_add_address(ifindex, a->family, a->addr, a->prefix_len, detail);
    case REPLACE_ROUTE: return nl_replace_route(ifindex, a->family, a->addr, a->prefix_len, detail);
    case DELETE_ROUTE: return nl_delete_route(ifindex, a->family, a->addr, a->prefix_len, detail);
  }
  return EINVAL;
}

static napi_value call(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok) {
    napi_throw_error(env, NULL, ADDON_NAME ": napi_get_cb_info failed");
    return NULL;
  }
  op_t op = (op_t)(uintptr_t)data;
  args_t a;
  memset(&a, 0, sizeof a);
  if (!parse(env, op, argc, argv, &a)) {
    char usage[160];
    snprintf(usage, sizeof usage, "usage: %s", OPS[op].usage);
    return throw_type_error(env, usage);
  }
  char detail[NL_DETAIL_SIZE] = "";
  int err = run(op, &a, detail);
  if (err == 0) return NULL;  // undefined

  char what[128], message[128 + 64 + NL_DETAIL_SIZE], code[32];
  describe(op, &a, what, sizeof what);
  if (detail[0] != '\0') snprintf(message, sizeof message, "%s: %s (%s)", what, strerror(err), detail);
  else snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name_r(-err, code, sizeof code), message);
  return NULL;
}

napi_status netlink_js_init(napi_env env, napi_value exports) {
  for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
    napi_value fn;
    napi_status status = napi_create_function(env, OPS[i].name, NAPI_AUTO_LENGTH, call, (void *)(uintptr_t)i, &fn);
    if (status == napi_ok) status = napi_set_named_property(env, exports, OPS[i].name, fn);
    if (status != napi_ok) return status;
  }
  return napi_ok;
}
