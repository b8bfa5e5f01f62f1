#ifndef URLPOLL_MALLOC_SHIM_H
#define URLPOLL_MALLOC_SHIM_H

/* glibc's malloc extensions (malloc.h is not in Swift's Glibc module): malloc_trim(3), used after a reload
   to hand the previous script's freed memory back to the system, and mallopt(3), used at start to keep large
   blocks mapped on their own and the arenas few (urlpoll's MallocTuning). */
#include <malloc.h>

#endif
