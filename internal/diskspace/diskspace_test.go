package diskspace

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	have, err := Free(dir)
	if err != nil || have == 0 {
		t.Fatalf("Free(%s) = %d, %v", dir, have, err)
	}
	if err := Check(nil, dir, 1); err != nil {
		t.Fatal(err)
	}
	fake := func(string) (uint64, error) { return 100, nil }
	if err := Check(fake, dir, 101); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("Check with 100 free for 101: %v", err)
	}
	if err := Check(fake, dir, 100); err != nil {
		t.Fatalf("Check with 100 free for 100: %v", err)
	}
	if _, err := Free("/nonexistent/dir"); err == nil {
		t.Fatal("Free of a missing directory succeeded")
	}
}
