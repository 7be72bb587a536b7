package keys

import (
	"bytes"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFilesRoundTripForEveryAlgorithm(t *testing.T) {
	for _, alg := range []string{Ed25519, ECDSAP256} {
		t.Run(alg, func(t *testing.T) {
			k, err := Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "k.key")
			if err := Save(path, k); err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(path)
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
			}
			back, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			id1, _ := k.ID()
			id2, _ := back.ID()
			if id1 != id2 || back.Alg != alg {
				t.Fatalf("loaded key %s/%s, want %s/%s", back.Alg, id2, alg, id1)
			}
			s, err := back.Signer()
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.SignMessage(bytes.NewReader([]byte("m")))
			if err != nil || len(sig) == 0 {
				t.Fatalf("signing: %v", err)
			}
			var _ crypto.PublicKey = back.Public()
			if err := Save(path, k); err == nil {
				t.Fatal("Save overwrote an existing key file")
			}
		})
	}
}

func TestMalformedKeyFilesAreRefused(t *testing.T) {
	k, _ := Generate(Ed25519)
	good, _ := k.Marshal()
	ec, _ := Generate(ECDSAP256)
	ecGood, _ := ec.Marshal()
	for name, data := range map[string][]byte{
		"empty":          nil,
		"not json":       []byte("hello"),
		"unknown field":  bytes.Replace(good, []byte(`"type"`), []byte(`"extra": 1, "type"`), 1),
		"trailing data":  append(append([]byte{}, good...), []byte(" {}")...),
		"type mismatch":  bytes.Replace(good, []byte(`"ed25519"`), []byte(`"ecdsa-p256"`), 1),
		"ecdsa as ed":    bytes.Replace(ecGood, []byte(`"ecdsa-p256"`), []byte(`"ed25519"`), 1),
		"bad der":        []byte(`{"type":"ed25519","private":"AAAA"}`),
		"oversized file": bytes.Repeat([]byte(" "), MaxFileSize+1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(data); !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("Parse: %v, want ErrBadKeyFile", err)
			}
		})
	}
	if _, err := Generate("rsa"); err == nil || !strings.Contains(err.Error(), "ed25519") {
		t.Fatalf("Generate(rsa): %v", err)
	}
}

func FuzzParse(f *testing.F) {
	k, _ := Generate(Ed25519)
	good, _ := k.Marshal()
	f.Add(good)
	f.Add([]byte(`{"type":"ed25519","private":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := Parse(data)
		if err != nil {
			return
		}
		if _, err := k.Signer(); err != nil {
			t.Fatalf("parsed key cannot sign: %v", err)
		}
	})
}
