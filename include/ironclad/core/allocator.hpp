// Process-wide allocator settings for programs that train or evaluate networks.
//
// glibc returns large blocks to the system after every free and maps them afresh on the next malloc, so each
// batch pays page faults for every activation buffer (several ms per 8 MB tensor on a VM). These settings keep
// freed memory in the process, as run_peer.sh does for the PyTorch peer. Call once at program start; a library
// should not change this behind its user's back, so nothing calls it implicitly.
#pragma once

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ironclad {

inline void configure_allocator() {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);   // blocks up to 32 MiB come from the heap, not fresh mmaps
    mallopt(M_TRIM_THRESHOLD, 1 << 30);    // keep up to 1 GiB of freed heap instead of returning it
    mallopt(M_TOP_PAD, 256 << 20);         // grow the heap in large steps
#endif
}

}  // namespace ironclad
