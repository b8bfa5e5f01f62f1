#ifndef URLPOLL_RESOLV_SHIM_H
#define URLPOLL_RESOLV_SHIM_H

#include <netinet/in.h>
#include <arpa/nameser.h>
#include <resolv.h>

/* resolv.h names these through macros (res_ninit is __res_ninit, and so on); Swift imports functions. */
static inline int up_res_ninit(res_state state) { return res_ninit(state); }
static inline void up_res_nclose(res_state state) { res_nclose(state); }
static inline int up_res_nmkquery(res_state state, int type, const char *name, unsigned char *buffer, int length) {
    return res_nmkquery(state, ns_o_query, name, ns_c_in, type, NULL, 0, NULL, buffer, length);
}

/* ns_msg and ns_rr accessors are macros too. */
static inline int up_ns_msg_rcode(const ns_msg *msg) { return ns_msg_getflag(*msg, ns_f_rcode); }
static inline int up_ns_msg_tc(const ns_msg *msg) { return ns_msg_getflag(*msg, ns_f_tc); }
static inline unsigned up_ns_msg_id(const ns_msg *msg) { return ns_msg_id(*msg); }
static inline int up_ns_msg_count(const ns_msg *msg, ns_sect section) { return ns_msg_count(*msg, section); }
static inline const char *up_ns_rr_name(const ns_rr *rr) { return ns_rr_name(*rr); }
static inline int up_ns_rr_type(const ns_rr *rr) { return ns_rr_type(*rr); }
static inline unsigned long up_ns_rr_ttl(const ns_rr *rr) { return ns_rr_ttl(*rr); }

/* One record in presentation form (RFC 1035 §5.1), names absolute. glibc marks ns_sprintrr deprecated (it
   keeps it, unchanged, for compatibility); it is the library's only printer of every record type. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
static inline int up_ns_sprintrr(const ns_msg *msg, const ns_rr *rr, char *buffer, size_t length) {
    return ns_sprintrr(msg, rr, NULL, NULL, buffer, length);
}
#pragma clang diagnostic pop

/* The first name server res_ninit read from /etc/resolv.conf (an IPv4 address and port in network order), or
   0 when it lists none with IPv4. */
static inline int up_res_first_server(res_state state, struct sockaddr_in *out) {
    if (state->nscount < 1) return 0;
    *out = state->nsaddr_list[0];
    return out->sin_family == AF_INET;
}

#endif
