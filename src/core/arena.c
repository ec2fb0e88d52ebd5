/* arena.c — chunked bump allocator for load-time data (names, attributes, small constants), aligned malloc, and
 * giving pages of dead data back to the OS. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core.h"

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    _Alignas(64) unsigned char data[];
} arena_chunk;

struct core_arena {
    arena_chunk *head;
};

core_arena *core_arena_create(void) { return calloc(1, sizeof(core_arena)); }

void core_arena_free(core_arena *arena) {
    if (!arena) return;
    for (arena_chunk *c = arena->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(arena);
}

void *core_arena_alloc(core_arena *arena, size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) return NULL;
    arena_chunk *c = arena->head;
    if (!c || c->size - c->used < rounded) {
        size_t size = rounded > 65536 ? rounded : 65536, total;
        if (!core_add_size(sizeof(arena_chunk), size, &total)) return NULL;
        c = aligned_alloc(64, (total + 63) & ~(size_t)63);
        if (!c) return NULL;
        c->size = size;
        c->used = 0;
        c->next = arena->head;
        arena->head = c;
    }
    void *p = c->data + c->used;
    c->used += rounded;
    memset(p, 0, bytes);
    return p;
}

char *core_arena_strndup(core_arena *arena, const char *s, size_t len) {
    char *p = core_arena_alloc(arena, len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = 0;
    return p;
}

char *core_arena_strdup(core_arena *arena, const char *s) { return core_arena_strndup(arena, s, strlen(s)); }

void *core_aligned_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) return NULL;
    return aligned_alloc(64, rounded ? rounded : 64);
}

void core_aligned_free(void *p) { free(p); }

void core_discard_pages(void *p, size_t bytes) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !p) return;
    uintptr_t begin = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t end = ((uintptr_t)p + bytes) & ~((uintptr_t)page - 1);
    if (end > begin) madvise((void *)begin, end - begin, MADV_DONTNEED); /* advice only: failure keeps the pages */
}
