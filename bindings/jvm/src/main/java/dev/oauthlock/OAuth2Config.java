package dev.oauthlock;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The built-in OAuth2 refresher's config, as the JSON the C ABI takes: {@code token_url},
 * {@code client_id}, optional {@code client_secret}, {@code scope}, {@code body} ({@code
 * "form"} or {@code "json"}), {@code extra_params}, {@code headers}, {@code timeout}. The
 * library validates it (unknown fields are refused with {@link Code#INVALID_ARGUMENT}, plain
 * http other than loopback with {@link Code#INSECURE}).
 */
public final class OAuth2Config {
  private final String json;

  private OAuth2Config(String json) {
    this.json = json;
  }

  /** A config given as JSON text, passed to the library as is. */
  public static OAuth2Config fromJson(String json) {
    return new OAuth2Config(json);
  }

  /** {@code {"token_url": tokenUrl, "client_id": clientId}}. */
  public static OAuth2Config of(String tokenUrl, String clientId) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("token_url", tokenUrl);
    m.put("client_id", clientId);
    return new OAuth2Config(Json.write(m));
  }

  /** This config with one more field (e.g. {@code with("body", "json")}). */
  public OAuth2Config with(String field, Object value) {
    Map<String, Object> m = new LinkedHashMap<>(Json.parseObject(json));
    m.put(field, value);
    return new OAuth2Config(Json.write(m));
  }

  /** The JSON text. */
  public String json() {
    return json;
  }

  @Override
  public String toString() {
    Object parsed;
    try {
      parsed = Json.parse(json);
    } catch (IllegalArgumentException e) {
      return "OAuth2Config[malformed]";
    }
    if (parsed instanceof Map && ((Map<?, ?>) parsed).containsKey("client_secret")) {
      Map<String, Object> m = new LinkedHashMap<>(Json.parseObject(json));
      m.put("client_secret", "<redacted>");
      return "OAuth2Config" + Json.write(m);
    }
    return "OAuth2Config" + json;
  }
}
