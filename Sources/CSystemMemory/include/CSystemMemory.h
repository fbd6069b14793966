#ifndef C_SYSTEM_MEMORY_H
#define C_SYSTEM_MEMORY_H

#include <stddef.h>
#if defined(__linux__)
// Also defines __GLIBC__ when the C library is glibc (musl has no malloc_trim).
#include <malloc.h>
#include <dlfcn.h>
#endif

/// Whether malloc_trim can return anything: the C library is glibc and no sanitizer
/// runtime has replaced its allocator.
static inline int c_system_memory_can_trim(void) {
#if defined(__GLIBC__)
    return dlsym(RTLD_DEFAULT, "__tsan_init") == NULL && dlsym(RTLD_DEFAULT, "__asan_init") == NULL;
#else
    return 0;
#endif
}

/// glibc's malloc_trim, which Swift's Glibc module does not export (it lives in
/// <malloc.h>). Returns 1 when memory was returned to the system, 0 otherwise, and
/// -1 where the C library has no such call.
static inline int c_system_memory_trim(size_t pad) {
#if defined(__GLIBC__)
    return malloc_trim(pad);
#else
    (void)pad;
    return -1;
#endif
}

#endif
