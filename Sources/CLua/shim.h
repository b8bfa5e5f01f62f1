/* Thin C layer between urlpoll's Swift engine and Debian's liblua5.4.
 *
 * Everything that can raise a Lua error (and so longjmp) starts and ends in C: Swift calls only the
 * protected entry points below (up_pcall, up_pgetfield) and API functions that cannot raise. Swift
 * functions exposed to Lua go through up_trampoline, which raises on their behalf after they return.
 *
 * The headers are included through their lua5.4/ directory so the build works whether or not
 * pkg-config is installed. */
#ifndef URLPOLL_CLUA_SHIM_H
#define URLPOLL_CLUA_SHIM_H

#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>
#include <lua5.4/lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int UP_REGISTRYINDEX = LUA_REGISTRYINDEX;

/* Instructions between two checks of the budget. */
#define UP_HOOK_PERIOD 1000

/* Per-state context: the memory cap, the instruction budget of the current call, and a pointer back to
 * the Swift owner. Reached through the allocator's user data, so every coroutine shares it. */
typedef struct up_ctx {
    size_t used;            /* bytes allocated by this state */
    size_t peak;            /* largest `used` seen */
    size_t limit;           /* memory cap, enforced while `enforce` is set */
    int enforce;            /* set while script code runs */
    long long budget;       /* instructions left for the current protected call */
    int budget_hit;         /* set when the current call ran out of instructions */
    void *owner;            /* the Swift LuaRuntime, unretained */
} up_ctx;

static inline up_ctx *up_ctxof(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (up_ctx *)ud;
}

static void *up_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    up_ctx *c = (up_ctx *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        c->used -= old;
        return NULL;
    }
    if (c->enforce && nsize > old && c->used - old + nsize > c->limit) return NULL;
    void *p = realloc(ptr, nsize);
    if (p == NULL) return NULL;
    c->used = c->used - old + nsize;
    if (c->used > c->peak) c->peak = c->used;
    return p;
}

/* Count hook, installed once for the main thread; coroutines inherit it. Once the budget is spent it
 * fires on every instruction, so a script's own pcall cannot swallow the error and carry on. */
static void up_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    up_ctx *c = up_ctxof(L);
    int period = lua_gethookcount(L);
    c->budget -= period;
    if (c->budget <= 0) {
        c->budget_hit = 1;
        if (period != 1) lua_sethook(L, up_hook, LUA_MASKCOUNT, 1);
        luaL_where(L, 0); /* in a hook, level 0 is the interrupted Lua function */
        lua_pushstring(L, "instruction budget exceeded");
        lua_concat(L, 2);
        lua_error(L);
    } else if (period == 1) {
        lua_sethook(L, up_hook, LUA_MASKCOUNT, UP_HOOK_PERIOD);
    }
}

static int up_panic(lua_State *L) {
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(no message)";
    fprintf(stderr, "urlpoll: unprotected Lua error (this is a bug in urlpoll): %s\n", msg);
    fflush(stderr);
    return 0; /* Lua then aborts */
}

/* A new state with the counting allocator, the panic handler and the budget hook; NULL on failure.
 * The context is owned by the caller and must outlive the state. */
static inline lua_State *up_newstate(up_ctx *c) {
    lua_State *L = lua_newstate(up_alloc, c);
    if (L == NULL) return NULL;
    lua_atpanic(L, up_panic);
    lua_sethook(L, up_hook, LUA_MASKCOUNT, UP_HOOK_PERIOD);
    return L;
}

/* Message handler: the error message with a traceback, as lua.c's msghandler. */
static int up_msgh(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* [fn, args...] -> results, or an error message with a traceback. Never raises. The memory cap is on and
 * the instruction budget is `budget` for the length of the call. */
static inline int up_pcall(lua_State *L, int nargs, int nresults, long long budget) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, up_msgh);
    lua_insert(L, base);
    up_ctx *c = up_ctxof(L);
    int saved = c->enforce;
    c->enforce = 1;
    c->budget = budget > 0 ? budget : 0x7fffffffffffffffLL;
    c->budget_hit = 0;
    lua_sethook(L, up_hook, LUA_MASKCOUNT, UP_HOOK_PERIOD);
    int status = lua_pcall(L, nargs, nresults, base);
    c->enforce = saved;
    lua_remove(L, base);
    return status;
}

/* Loads a text chunk (no bytecode) from a file; the chunk name is "@path" so messages read path:line. */
static inline int up_loadfile(lua_State *L, const char *path) {
    return luaL_loadfilex(L, path, "t");
}

static inline int up_loadbuffer(lua_State *L, const char *s, size_t n, const char *name) {
    return luaL_loadbufferx(L, s, n, name, "t");
}

static int up__openlibs(lua_State *L) {
    luaL_openlibs(L);
    return 0;
}

/* Opens the standard libraries inside a protected call. */
static inline int up_openlibs(lua_State *L) {
    lua_pushcfunction(L, up__openlibs);
    return up_pcall(L, 0, 0, 0);
}

/* Swift functions exposed to Lua: they push an error message and return -1 instead of raising, and the
 * trampoline raises once the Swift frame has returned. luaL_where adds the caller's file:line. */
typedef int (*up_hostfn)(lua_State *L);

/* Pushes "file:line: " for the innermost caller that is script code, skipping the prelude's own frames
 * (chunk "=urlpoll") and C functions between (pcall, when a script writes pcall(urlpoll.post, ...)), so an
 * error from urlpoll.log points at the line of the script that called it. */
static void up_where_user(lua_State *L) {
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar)) break;
        if (strcmp(ar.source, "=urlpoll") == 0) continue;
        if (ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

/* A host function returns this to suspend the hook's coroutine (urlpoll.http): the trampoline yields with no
 * values, and the values the host resumes the coroutine with become the host function's results. */
#define UP_YIELD (-2)
static const int UP_YIELD_CODE = UP_YIELD;

/* "file:line" of the innermost script line calling the running C function, into buf ("" when none). */
static inline void up_wherebuf(lua_State *L, char *buf, size_t n) {
    lua_Debug ar;
    if (n > 0) buf[0] = 0;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar)) break;
        if (strcmp(ar.source, "=urlpoll") == 0) continue;
        if (ar.currentline > 0) {
            snprintf(buf, n, "%s:%d", ar.short_src, ar.currentline);
            return;
        }
    }
}

static int up_trampoline(lua_State *L) {
    up_hostfn fn = (up_hostfn)lua_touserdata(L, lua_upvalueindex(1));
    /* debug.setupvalue can replace the upvalue; never call through anything but a light userdata. */
    if (fn == NULL || lua_type(L, lua_upvalueindex(1)) != LUA_TLIGHTUSERDATA)
        return luaL_error(L, "a urlpoll function was tampered with");
    up_ctx *c = up_ctxof(L);
    int saved = c->enforce;
    c->enforce = 0;
    int n = fn(L);
    c->enforce = saved;
    if (n == UP_YIELD) return lua_yield(L, 0);
    if (n < 0) {
        up_where_user(L);
        lua_insert(L, -2);
        lua_concat(L, 2);
        return lua_error(L);
    }
    return n;
}

/* Resumes the hook coroutine `co` with the `nargs` values on top of its stack, with the memory cap on and
 * `*budget` instructions left for the hook call (all its resumes share one budget, left in `*budget`
 * afterwards). Never raises: an error ends the coroutine, and lua_resume returns its status. */
static inline int up_resume(lua_State *co, lua_State *from, int nargs, int *nresults, long long *budget) {
    up_ctx *c = up_ctxof(co);
    int saved = c->enforce;
    c->enforce = 1;
    c->budget = *budget > 0 ? *budget : 1;
    c->budget_hit = 0;
    lua_sethook(co, up_hook, LUA_MASKCOUNT, UP_HOOK_PERIOD);
    int status = lua_resume(co, from, nargs, nresults);
    c->enforce = saved;
    *budget = c->budget;
    return status;
}

static int up__cotraceback(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    const char *msg = lua_tostring(L, 2);
    if (msg == NULL) {
        if (luaL_callmeta(L, 2, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 2));
    }
    luaL_traceback(L, co, msg, 0);
    return 1;
}

/* Moves the error value on top of the dead coroutine `co` to `L` as a message with co's traceback (its
 * stack is left as the error found it). Never raises; returns the status of that protected step. */
static inline int up_coerror(lua_State *L, lua_State *co) {
    lua_checkstack(co, 2);
    lua_pushcfunction(L, up__cotraceback);
    lua_pushthread(co);
    lua_xmove(co, L, 1); /* [fn, thread] */
    lua_xmove(co, L, 1); /* [fn, thread, error] */
    return lua_pcall(L, 2, 1, 0);
}

static inline void up_pushhostfn(lua_State *L, up_hostfn fn) {
    lua_pushlightuserdata(L, (void *)fn);
    lua_pushcclosure(L, up_trampoline, 1);
}

static inline void up_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void up_newtable(lua_State *L) { lua_newtable(L); }
static inline int up_isfunction(lua_State *L, int i) { return lua_type(L, i) == LUA_TFUNCTION; }
static inline void up_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }
static inline void up_remove(lua_State *L, int i) { lua_remove(L, i); }
static inline void up_insert(lua_State *L, int i) { lua_insert(L, i); }

/* Where a Lua function was defined, as "file:line", into buf. */
static inline void up_funcwhere(lua_State *L, int idx, char *buf, size_t n) {
    lua_Debug ar;
    lua_pushvalue(L, idx);
    if (lua_getinfo(L, ">S", &ar)) {
        snprintf(buf, n, "%s:%d", ar.short_src, ar.linedefined);
    } else {
        snprintf(buf, n, "?");
    }
}

#endif
