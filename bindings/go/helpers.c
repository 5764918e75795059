// See helpers.h.
#include "helpers.h"

#include "_cgo_export.h"

ol_result ol_source_call(uintptr_t source_, int which, uint64_t arg, uintptr_t text_,
                         uintptr_t last_) {
  const oauth_lock_source *source = (const oauth_lock_source *)source_;
  const char *text = (const char *)text_;
  const oauth_lock_token *last = (const oauth_lock_token *)last_;
  ol_result r = {0};
  switch (which) {
    case OL_ACCESS_TOKEN:
      r.code = oauth_lock_source_access_token(source, &r.token);
      break;
    case OL_VALID_FOR:
      r.code = oauth_lock_source_access_token_valid_for(source, arg, &r.token);
      break;
    case OL_REJECT:
      r.code = oauth_lock_source_reject(source, text, &r.token);
      break;
    default:
      r.code = oauth_lock_source_verify(source, &r.token);
      break;
  }
  if (r.code != OAUTH_LOCK_OK) {
    // Still on the thread of the failed call, with no other oauth-lock call in between: its
    // last error is this call's.
    if (oauth_lock_last_error_json(&r.string) != OAUTH_LOCK_OK) r.string = NULL;
  } else if (last != NULL && r.token == last) {
    oauth_lock_token_free(r.token);
    r.token = NULL;
    r.same = 1;
  }
  return r;
}

ol_result ol_store_verify(const oauth_lock_store *store, const char *key) {
  ol_result r = {0};
  r.code = oauth_lock_store_verify_e(store, key, &r.token, &r.error);
  return r;
}

ol_token_info ol_token_read(const oauth_lock_token *token) {
  ol_token_info i;
  i.value = oauth_lock_token_value(token);
  i.type = oauth_lock_token_type(token);
  i.fingerprint = oauth_lock_token_fingerprint(token);
  i.expires_at_ms = oauth_lock_token_expires_at_ms(token);
  i.generation = oauth_lock_token_generation(token);
  return i;
}

ol_store_result ol_store_new(const char *dir) {
  ol_store_result r = {0};
  r.code = oauth_lock_store_new_e(dir, &r.store, &r.error);
  return r;
}

ol_result ol_store_dir(const oauth_lock_store *store) {
  ol_result r = {0};
  r.code = oauth_lock_store_dir_e(store, &r.string, &r.error);
  return r;
}

ol_result ol_store_path_of(const oauth_lock_store *store, const char *key) {
  ol_result r = {0};
  r.code = oauth_lock_store_path_of_e(store, key, &r.string, &r.error);
  return r;
}

ol_result ol_store_status(const oauth_lock_store *store, const char *key) {
  ol_result r = {0};
  r.code = oauth_lock_store_status_e(store, key, &r.string, &r.error);
  return r;
}

ol_result ol_store_list(const oauth_lock_store *store) {
  ol_result r = {0};
  r.code = oauth_lock_store_list_e(store, &r.string, &r.error);
  return r;
}

ol_result ol_store_save(const oauth_lock_store *store, const char *key, const char *json,
                        uint32_t flags) {
  ol_result r = {0};
  r.code = oauth_lock_store_save_e(store, key, json, flags, &r.error);
  return r;
}

ol_clear_result ol_store_clear(const oauth_lock_store *store, const char *key) {
  ol_clear_result r = {0};
  bool existed = false;
  r.code = oauth_lock_store_clear_e(store, key, &existed, &r.error);
  r.existed = existed;
  return r;
}

ol_source_result ol_source_new(const oauth_lock_store *store, const char *key,
                               const oauth_lock_source_options *options) {
  ol_source_result r = {0};
  r.code = oauth_lock_source_new_e(store, key, options, &r.source, &r.error);
  return r;
}

ol_source_result ol_source_new_oauth2(const oauth_lock_store *store, const char *key,
                                      const char *config_json,
                                      const oauth_lock_source_options *options) {
  ol_source_result r = {0};
  r.code = oauth_lock_source_new_oauth2_e(store, key, config_json, options, &r.source, &r.error);
  return r;
}

static int ol_refresh_trampoline(void *userdata, const char *credential_json,
                                 oauth_lock_answer *answer) {
  return oauthlockGoRefresh((uintptr_t)userdata, (char *)credential_json, answer);
}

static void ol_free_trampoline(void *userdata) { oauthlockGoFree((uintptr_t)userdata); }

ol_source_result ol_source_new_go(const oauth_lock_store *store, const char *key,
                                  uintptr_t handle, const oauth_lock_source_options *options) {
  ol_source_result r = {0};
  r.code = oauth_lock_source_new_callback_e(store, key, ol_refresh_trampoline, (void *)handle,
                                            ol_free_trampoline, options, &r.source, &r.error);
  return r;
}

static void ol_event_trampoline(void *userdata, const char *event_json) {
  (void)userdata;
  oauthlockGoEvent((char *)event_json);
}

ol_listener_result ol_add_go_listener(void) {
  ol_listener_result r = {0};
  r.code = oauth_lock_add_event_listener_e(ol_event_trampoline, NULL, NULL, &r.id, &r.error);
  return r;
}
