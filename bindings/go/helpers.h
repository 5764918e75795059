// C helpers of the Go package: one cgo crossing per call where the Go side would need
// several, results returned by value (so that no Go pointer is passed to C and nothing
// escapes to the Go heap), and the trampolines that turn the library's callbacks into calls
// of the exported Go functions (callbacks.go) with a cgo.Handle number as userdata.
#ifndef OAUTHLOCK_GO_HELPERS_H
#define OAUTHLOCK_GO_HELPERS_H

#include <stdint.h>
#include <oauth_lock.h>

// The outcome of a call that returns a token or a string.
typedef struct {
  int code;
  oauth_lock_token *token;
  char *string;
  oauth_lock_error *error;
  // The call returned the token `last` the Go side already holds: its extra reference was
  // dropped and token is NULL.
  int same;
} ol_result;

// What a token holds, read in one crossing; the strings are the token's (valid until it is
// freed).
typedef struct {
  const char *value;
  const char *type;
  const char *fingerprint;
  int64_t expires_at_ms;
  uint64_t generation;
} ol_token_info;

typedef struct {
  int code;
  oauth_lock_store *store;
  oauth_lock_error *error;
} ol_store_result;

typedef struct {
  int code;
  oauth_lock_source *source;
  oauth_lock_error *error;
} ol_source_result;

typedef struct {
  int code;
  int existed;
  oauth_lock_error *error;
} ol_clear_result;

typedef struct {
  int code;
  uint64_t id;
  oauth_lock_error *error;
} ol_listener_result;

// The source calls: which is OL_ACCESS_TOKEN, OL_VALID_FOR (with arg, ms), OL_REJECT (with
// text, the rejected token) or OL_VERIFY. The hot path: the plain call (its _e twin costs
// ~30 ns more), and on a failure the thread's last error as JSON in string, read by this
// same C function on the same thread right after the call (so a goroutine moving between
// threads cannot see another call's error).
enum { OL_ACCESS_TOKEN = 0, OL_VALID_FOR = 1, OL_REJECT = 2, OL_VERIFY = 3 };
// The pointers cross as integers: they are C memory, and cgo's pointer checks (for
// arguments of pointer type) cost ~6% of the hot path.
ol_result ol_source_call(uintptr_t source, int which, uint64_t arg, uintptr_t text,
                         uintptr_t last);
ol_result ol_store_verify(const oauth_lock_store *store, const char *key);

ol_token_info ol_token_read(const oauth_lock_token *token);

ol_store_result ol_store_new(const char *dir);
ol_result ol_store_dir(const oauth_lock_store *store);
ol_result ol_store_path_of(const oauth_lock_store *store, const char *key);
ol_result ol_store_status(const oauth_lock_store *store, const char *key);
ol_result ol_store_list(const oauth_lock_store *store);
ol_result ol_store_save(const oauth_lock_store *store, const char *key, const char *json,
                        uint32_t flags);
ol_clear_result ol_store_clear(const oauth_lock_store *store, const char *key);

ol_source_result ol_source_new(const oauth_lock_store *store, const char *key,
                               const oauth_lock_source_options *options);
ol_source_result ol_source_new_oauth2(const oauth_lock_store *store, const char *key,
                                      const char *config_json,
                                      const oauth_lock_source_options *options);
// A source refreshed by the Go refresher behind the cgo.Handle number `handle`.
ol_source_result ol_source_new_go(const oauth_lock_store *store, const char *key,
                                  uintptr_t handle, const oauth_lock_source_options *options);

// Registers the Go event listener (userdata 0).
ol_listener_result ol_add_go_listener(void);

#endif
