package dev.oauthlock;

import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;

/**
 * What is known about one credential, without locking or refreshing ({@code
 * oauth_lock_store_status}): typed accessors for the common fields, {@link #get} for the
 * rest, {@link #json()} for all of it. Never holds a token (fingerprints only).
 */
public final class Status {
  private final Map<String, Object> fields;
  private final String json;

  Status(Map<String, Object> fields, String json) {
    this.fields = fields;
    this.json = json;
  }

  static Status parse(String json) {
    return new Status(Json.parseObject(json), json);
  }

  public String key() {
    return (String) fields.get("key");
  }

  public Path path() {
    return Path.of((String) fields.get("path"));
  }

  /** Whether the record file exists. */
  public boolean exists() {
    return Boolean.TRUE.equals(fields.get("exists"));
  }

  /** The record generation (0 when there is none). */
  public long generation() {
    Object g = fields.get("generation");
    return g instanceof Number ? ((Number) g).longValue() : 0;
  }

  /** {@code "ok"}, {@code "needs_login"}, ... (null without a readable record). */
  public String state() {
    return (String) fields.get("state");
  }

  public boolean hasAccessToken() {
    return Boolean.TRUE.equals(fields.get("has_access_token"));
  }

  public boolean hasRefreshToken() {
    return Boolean.TRUE.equals(fields.get("has_refresh_token"));
  }

  public boolean hasRefreshConfig() {
    return Boolean.TRUE.equals(fields.get("has_refresh_config"));
  }

  /** When the access token expires, if known. */
  public Optional<Instant> expiresAt() {
    Object ms = fields.get("expires_at_ms");
    return ms instanceof Number
        ? Optional.of(Instant.ofEpochMilli(((Number) ms).longValue()))
        : Optional.empty();
  }

  /** Any field of the status object (e.g. {@code "last_error"}, {@code "problem"}). */
  public Object get(String field) {
    return fields.get(field);
  }

  /** The whole status as the library gave it. */
  public String json() {
    return json;
  }

  @Override
  public String toString() {
    return "Status" + json;
  }
}
