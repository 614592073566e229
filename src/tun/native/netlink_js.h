// JS bindings for netlink.h; tun.c's module init calls this to add them to the addon's exports.
#ifndef VIBEPN_NETLINK_JS_H
#define VIBEPN_NETLINK_JS_H

#include <node_api.h>

napi_status netlink_js_init(napi_env env, napi_value exports);

#endif
