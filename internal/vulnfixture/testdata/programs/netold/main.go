// Command netold parses HTML and serves HTTP/2 with a 2021 golang.org/x/net.
package main

import (
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/http2"
)

func main() {
	doc, err := html.Parse(strings.NewReader("<p>hello</p>"))
	fmt.Println(doc != nil, err)
	srv := &http.Server{}
	fmt.Println(http2.ConfigureServer(srv, &http2.Server{}))
}
