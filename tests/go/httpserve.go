package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

// httpserve PORT: a net/http server answering every path with a line naming the request;
// GET /exit answers, then ends the program with status 0.
func httpserve() {
	if len(os.Args) < 3 {
		fmt.Println("usage: goprocs httpserve PORT")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", ":"+os.Args[2])
	if err != nil {
		fmt.Println("FAIL listen:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", ln.Addr())
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go: %s %s\n", r.Method, r.URL.Path)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "bye")
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		close(done)
	})
	go func() {
		if err := http.Serve(ln, mux); err != nil {
			fmt.Println("FAIL serve:", err)
			os.Exit(1)
		}
	}()
	<-done
	fmt.Println("httpserve: done")
}
