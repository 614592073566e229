# Built by `npm install` (node-gyp is npm's default install step when this file exists).
# Output: build/Release/vibepn_tun.node (src/tun/device.ts) and vibepn_udp.node (src/quic/batch-send.ts).
# src/native holds the C headers both addons share (N-API helpers, the polled-fd lifecycle).
{
  "targets": [
    {
      "target_name": "vibepn_tun",
      "sources": ["src/tun/native/tun.c", "src/tun/native/netlink.c", "src/tun/native/netlink_js.c", "src/tun/native/peercred.c"],
      "include_dirs": ["src/native"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
    },
    {
      "target_name": "vibepn_udp",
      "sources": ["src/quic/native/udp.c"],
      "include_dirs": ["src/native"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
    }
  ]
}
