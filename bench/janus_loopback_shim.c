/*
 * LD_PRELOAD shim for the SFU benchmark's Janus (bench/sfu_janus.py): make the loopback
 * interface look like an ordinary one.
 *
 * Why: the benchmark runs on 127.0.0.1 only (nothing may leave the machine: no STUN/TURN, no
 * public addresses), but Janus skips every interface flagged IFF_LOOPBACK when it gathers ICE
 * host candidates. Worse, with ice_enforce_list = "127.0.0.1" and no shim, no address is left,
 * libnice falls back to gathering on every interface, and Janus 1.1.2 offers the machine's
 * other addresses (IPv6 included; seen on Debian's package). With the flag cleared, Janus adds
 * 127.0.0.1 and the enforce list keeps every other address out: its SDPs carry one host
 * candidate, 127.0.0.1 (bench/sfu_janus.py checks every SDP for that).
 *
 * How: getifaddrs() is wrapped; the real one (dlsym RTLD_NEXT) fills the list, then the flag is
 * cleared in place on loopback entries. The list is still glibc's, so freeifaddrs() is
 * unchanged. Only getifaddrs() is affected; sockets and routing are not.
 *
 * Built on first use by bench/sfu_janus.py:
 *     cc -shared -fPIC -O2 -o janus_loopback_shim.so janus_loopback_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>

typedef int (*getifaddrs_fn)(struct ifaddrs **);

int getifaddrs(struct ifaddrs **ifap) {
    static getifaddrs_fn real_getifaddrs = NULL;
    if (real_getifaddrs == NULL) {
        real_getifaddrs = (getifaddrs_fn)dlsym(RTLD_NEXT, "getifaddrs");
        if (real_getifaddrs == NULL) {
            errno = ENOSYS;
            return -1;
        }
    }
    int result = real_getifaddrs(ifap);
    if (result != 0) {
        return result;
    }
    for (struct ifaddrs *ifa = *ifap; ifa != NULL; ifa = ifa->ifa_next) {
        if (ifa->ifa_flags & IFF_LOOPBACK) {
            ifa->ifa_flags &= ~(unsigned int)IFF_LOOPBACK;
        }
    }
    return 0;
}
