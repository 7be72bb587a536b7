// Command recent uses several modules at late-2024 versions that had no
// known advisories on 2025-01-01 but gained some during 2025 and 2026.
package main

import (
	"crypto/ed25519"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/ssh"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jws"
)

func main() {
	doc, err := html.Parse(strings.NewReader("<b>hi</b>"))
	fmt.Println(doc != nil, err)

	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	fmt.Println(k.Type(), err)

	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "device"})
	s, err := tok.SignedString(priv)
	fmt.Println(len(s), err)
	_, err = jwt.Parse(s, func(*jwt.Token) (any, error) { return pub, nil })
	fmt.Println(err)

	_, err = jws.Decode("a.b.c")
	fmt.Println(err, (&oauth2.Token{AccessToken: "t"}).Valid())
}
