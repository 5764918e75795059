package dev.oauthlock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The binding's small JSON reader and writer, which carries everything across the ABI. */
class JsonTest {
  @Test
  void parsesEveryKind() {
    Object v = Json.parse(
        " {\"s\": \"a\\\"b\\\\c\\n\\u00e9/\\/\", \"i\": -12, \"big\": 12345678901234, \"d\": 1.5e3,"
            + " \"t\": true, \"f\": false, \"n\": null, \"a\": [1, [], {}], \"o\": {\"x\": {}}} ");
    Map<?, ?> m = (Map<?, ?>) v;
    assertEquals("a\"b\\c\né//", m.get("s"));
    assertEquals(-12L, m.get("i"));
    assertEquals(12345678901234L, m.get("big"));
    assertEquals(1500.0, m.get("d"));
    assertEquals(true, m.get("t"));
    assertEquals(false, m.get("f"));
    assertEquals(null, m.get("n"));
    assertEquals(true, m.containsKey("n"));
    assertEquals(Arrays.asList(1L, List.of(), Map.of()), m.get("a"));
    assertEquals(Map.of("x", Map.of()), m.get("o"));
  }

  @Test
  void writesAndRoundTrips() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("access_token", "t\"\\\n\u0001é");
    m.put("expires_in", 3600);
    m.put("ratio", 0.5);
    m.put("none", null);
    m.put("list", List.of(true, "x"));
    String json = Json.write(m);
    assertEquals(
        "{\"access_token\":\"t\\\"\\\\\\n\\u0001é\",\"expires_in\":3600,\"ratio\":0.5,"
            + "\"none\":null,\"list\":[true,\"x\"]}",
        json);
    Map<String, Object> back = Json.parseObject(json);
    assertEquals(m.get("access_token"), back.get("access_token"));
    assertEquals(3600L, back.get("expires_in"));
  }

  @Test
  void refusesMalformedInput() {
    for (String bad : new String[] {"", "{", "{\"a\" 1}", "[1,]", "tru", "\"x", "{} x", "01x",
        "{\"a\":\"\\q\"}", "\"\\u12\"", "{1:2}"}) {
      assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), bad);
    }
    assertThrows(IllegalArgumentException.class, () -> Json.parseObject("[]"));
    assertThrows(IllegalArgumentException.class, () -> Json.write(Map.of(1, 2)));
    assertThrows(IllegalArgumentException.class, () -> Json.write(new Object()));
    assertThrows(IllegalArgumentException.class, () -> Json.write(Double.NaN));
  }
}
