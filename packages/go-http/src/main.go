// go-http: a small net/http server for Kiln's package recipes. Standard library only.
//
//	GET /         a greeting with the Go version and the number of requests served
//	GET /healthz  "ok"
//	GET /echo?msg=X  X back as JSON
//
// It listens on $PORT (default 8080) on all addresses.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		n := served.Add(1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello from go-http on Kiln (%s, %d CPU, request %d)\n",
			runtime.Version(), runtime.NumCPU(), n)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"msg": r.URL.Query().Get("msg")})
	})
	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Printf("go-http listening on %s", srv.Addr)
	log.Fatal(srv.ListenAndServe())
}
