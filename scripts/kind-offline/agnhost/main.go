// A stand-in for the smoke test's image (registry.k8s.io/e2e-test-images/agnhost),
// which is not on the Go module proxy: only what scripts/kind-up.sh uses of it,
// `agnhost netexec --http-port=N` answering /hostname (the pod's name) and /healthz.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "netexec" {
		fmt.Fprintln(os.Stderr, "usage: agnhost netexec [--http-port=PORT]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("netexec", flag.ExitOnError)
	port := fs.Int("http-port", 8080, "HTTP port")
	_ = fs.Parse(os.Args[2:])
	host, err := os.Hostname()
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/hostname", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, host) })
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	log.Printf("netexec: serving /hostname and /healthz on :%d", *port)
	log.Fatal(http.ListenAndServe(fmt.Sprintf(":%d", *port), nil))
}
