;; How a JVM tool written in Clojure (an editor server such as eca, one per workspace) takes
;; its Authorization header from oauth-lock, sharing one credential file with every other
;; process and language on the machine: no refresh logic here, the library does it.
;;
;; Run with the plain toolchain (scripts/test-jvm does exactly this):
;;   java -Djna.library.path=target/debug \
;;        -cp "<clojure 1.12 + spec jars>:<jna jar>:bindings/jvm/target/oauth-lock-0.1.0.jar" \
;;        clojure.main examples/clojure/fetch_token.clj [KEY [RESOURCE_URL]]
(ns fetch-token
  (:import (dev.oauthlock AccessToken OAuthLockException Store TokenSource)
           (java.net URI)
           (java.net.http HttpClient HttpRequest HttpResponse$BodyHandlers)))

(set! *warn-on-reflection* true)

(defn get-with-token
  "GET `url` with the source's token; after a 401, reject that token (one refresh shared by
  every process) and retry once. Returns the HTTP status."
  [^TokenSource source ^String url]
  (let [client (HttpClient/newHttpClient)
        send! (fn [^AccessToken token]
                (.statusCode (.send client
                                    (-> (HttpRequest/newBuilder (URI/create url))
                                        (.header "Authorization" (.authorization token))
                                        (.build))
                                    (HttpResponse$BodyHandlers/discarding))))
        token (.accessToken source)
        status (send! token)]
    (if (= 401 status)
      (send! (.reject source token))
      status)))

(defn -main [& [key url]]
  (let [key (or key "demo")]
    (try
      (with-open [store (Store/openDefault)
                  source (.source store ^String key)]
        (let [token (.accessToken source)]
          ;; Log the fingerprint, never the token.
          (println "token" (.fingerprint token) "generation" (.generation token))
          (when url
            (println "resource" (get-with-token source url)))))
      (catch OAuthLockException e
        (binding [*out* *err*]
          (println "oauth-lock:" (.designName (.code e)) (.getMessage e)))
        (System/exit 1)))))

(apply -main *command-line-args*)
