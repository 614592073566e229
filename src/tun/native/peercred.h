#ifndef VIBEPN_PEERCRED_H
#define VIBEPN_PEERCRED_H
#include <node_api.h>
napi_status peercred_js_init(napi_env env, napi_value exports);
#endif
