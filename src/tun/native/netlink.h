// rtnetlink requests that configure a TUN interface, without N-API so the kernel side can be read
// (and reasoned about) on its own; src/tun/native/netlink_js.c exposes them to JS.
//
// Every call sends one request on a fresh NETLINK_ROUTE socket and waits for the kernel's ACK, so
// no reply of an earlier call can be mistaken for this one's. Each returns 0 or a positive errno;
// on failure `detail` receives the kernel's extended-ACK text (e.g. "Invalid prefix for given
// prefix length") or "" when the kernel gave none.
#ifndef VIBEPN_NETLINK_H
#define VIBEPN_NETLINK_H

#include <stddef.h>
#include <stdint.h>

#define NL_DETAIL_SIZE 160

int nl_set_mtu(unsigned ifindex, uint32_t mtu, char detail[NL_DETAIL_SIZE]);
// Stops the kernel from generating an IPv6 link-local address (and with it RS/MLD traffic).
int nl_set_addr_gen_mode_none(unsigned ifindex, char detail[NL_DETAIL_SIZE]);
int nl_set_up(unsigned ifindex, char detail[NL_DETAIL_SIZE]);
// `addr` is 4 bytes for AF_INET, 16 for AF_INET6; IPv6 addresses skip DAD (IFA_F_NODAD).
int nl_add_address(unsigned ifindex, int family, const uint8_t *addr, uint8_t prefix_len, char detail[NL_DETAIL_SIZE]);
// A unicast route in the main table through `ifindex`, created or replaced (idempotent).
int nl_replace_route(unsigned ifindex, int family, const uint8_t *dst, uint8_t prefix_len, char detail[NL_DETAIL_SIZE]);
// ESRCH when no such route exists.
int nl_delete_route(unsigned ifindex, int family, const uint8_t *dst, uint8_t prefix_len, char detail[NL_DETAIL_SIZE]);

#endif
