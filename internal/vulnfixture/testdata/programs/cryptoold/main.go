// Command cryptoold hashes a password and parses an SSH key with a 2021
// golang.org/x/crypto.
package main

import (
	"crypto/ed25519"
	"fmt"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
)

func main() {
	h, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	fmt.Println(len(h), err)
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	fmt.Println(k.Type(), err, ssh.FingerprintSHA256(k))
	fmt.Println(ssh.ClientConfig{User: "x"}.User)
}
