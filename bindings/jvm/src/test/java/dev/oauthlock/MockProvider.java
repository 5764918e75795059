package dev.oauthlock;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The strict mock provider ({@code oauth-lock mock-server}) as a real process on 127.0.0.1,
 * as every multi-process test in the project drives it: log in with POST /login, assert
 * counts at GET /stats.
 */
final class MockProvider implements AutoCloseable {
  static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  final Process process;
  final String url;

  private MockProvider(Process process, String url) {
    this.process = process;
    this.url = url;
  }

  /** The oauth-lock CLI cargo built (surefire passes its path). */
  static Path cli() {
    return Path.of(System.getProperty("oauthlock.cli", "../../target/debug/oauth-lock"));
  }

  static MockProvider start(String... args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of(cli().toString(), "mock-server", "--port", "0"));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    BufferedReader out =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    String line;
    while ((line = out.readLine()) != null) {
      if (line.startsWith("listening on ")) {
        String url = line.substring("listening on ".length()).trim();
        // Keep draining stdout so the mock never blocks on a full pipe.
        Thread drain = new Thread(() -> {
          try {
            while (out.readLine() != null) {
              // discard
            }
          } catch (IOException ignored) {
            // the mock exited
          }
        });
        drain.setDaemon(true);
        drain.start();
        return new MockProvider(p, url);
      }
    }
    p.destroyForcibly();
    throw new IOException("the mock provider did not start: " + cmd);
  }

  String tokenUrl() {
    return url + "/oauth/token";
  }

  static HttpResponse<String> send(String method, String url, String body, String bearer) {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofString(body))
        .header("Content-Type", "application/json");
    if (bearer != null) {
      b.header("Authorization", "Bearer " + bearer);
    }
    try {
      return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new RuntimeException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RuntimeException(e);
    }
  }

  /** A fresh login: the provider's token response. */
  Map<String, Object> login() {
    HttpResponse<String> r = send("POST", url + "/login", "{}", null);
    if (r.statusCode() != 200) {
      throw new IllegalStateException("login: " + r.statusCode());
    }
    return Json.parseObject(r.body());
  }

  /** The record's refresh config pointing back at this mock. */
  Map<String, Object> refreshConfig(String clientId) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("token_url", tokenUrl());
    m.put("client_id", clientId);
    return m;
  }

  /** A login saved under {@code key} with the record's own refresh config. */
  Status logIn(Store store, String key) {
    return logIn(store, key, null);
  }

  /** As {@link #logIn(Store, String)}; {@code expiresIn} overrides the lifetime if not null. */
  Status logIn(Store store, String key, Integer expiresIn) {
    Map<String, Object> cred = login();
    if (expiresIn != null) {
      cred.put("expires_in", expiresIn);
    }
    cred.put("refresh", refreshConfig("oauth-lock-demo"));
    return store.save(key, cred, false);
  }

  /** GET /resource with the token: 200 when valid, 401 otherwise. */
  int resource(String token) {
    return send("GET", url + "/resource", null, token).statusCode();
  }

  Map<String, Object> stats() {
    return Json.parseObject(send("GET", url + "/stats", null, null).body());
  }

  long stat(String name) {
    return ((Number) stats().get(name)).longValue();
  }

  void revokeAccess() {
    send("POST", url + "/admin/revoke-access", "{}", null);
  }

  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
