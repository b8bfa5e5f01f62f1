#ifndef CHEAPSTATS_H
#define CHEAPSTATS_H
#include <stddef.h>

/// Bytes of heap in use, by glibc's mallinfo2(3): allocated in the arenas (uordblks) plus in mapped chunks
/// (hblkhd). Tests measure what a structure costs by the difference before and after making it.
size_t heap_bytes_in_use(void);

#endif
