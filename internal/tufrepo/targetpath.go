package tufrepo

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxTargetPath bounds a target path in bytes. It is the bound of the
// target field of a status report (report.MaxTarget), so that a device can
// always name, in a report it signs, any target the server accepted.
const MaxTargetPath = 256

// CheckTargetPath applies the rules every target path obeys, in the image
// repository (checked by the server before integrator-signed targets are
// stored) and in the director (checked by the agent before it acts on a
// target): at most MaxTargetPath bytes of valid UTF-8 without control
// characters (no NUL, newline, tab or DEL); three segments
// "<name>/<version>/<file>" where name and version are identifiers
// (ValidIdent) and file is not empty, ".", ".." and holds no "/" or "\".
// The error wraps ErrMalformed.
func CheckTargetPath(p string) error {
	if len(p) == 0 || len(p) > MaxTargetPath {
		return fmt.Errorf("%w: target path of %d bytes: it must be 1 to %d bytes", ErrMalformed, len(p), MaxTargetPath)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w: target path %s is not valid UTF-8", ErrMalformed, quoteShort(p))
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return fmt.Errorf("%w: target path %s holds a control character", ErrMalformed, quoteShort(p))
		}
	}
	parts := strings.Split(p, "/")
	if len(parts) != 3 {
		return fmt.Errorf("%w: target path %s must be <name>/<version>/<file>", ErrMalformed, quoteShort(p))
	}
	if !ValidIdent(parts[0]) || !ValidIdent(parts[1]) {
		return fmt.Errorf("%w: target path %s: name and version must be 1-128 of [A-Za-z0-9._+-], starting with a letter or digit", ErrMalformed, quoteShort(p))
	}
	if f := parts[2]; f == "" || f == "." || f == ".." || strings.Contains(f, `\`) {
		return fmt.Errorf("%w: target path %s: the file part must be a plain file name", ErrMalformed, quoteShort(p))
	}
	return nil
}

// CheckReleasePath checks p with CheckTargetPath and that it names the
// release im describes: "<im.Name>/<im.Version>/<file>".
func CheckReleasePath(p string, im ImageMeta) error {
	if err := CheckTargetPath(p); err != nil {
		return err
	}
	if prefix := TargetPath(im.Name, im.Version, ""); !strings.HasPrefix(p, prefix) {
		return fmt.Errorf("%w: target %s: the path must be %s<file> for release %s@%s", ErrMalformed, p, prefix, im.Name, im.Version)
	}
	return nil
}

// quoteShort quotes at most the first 64 bytes of s for an error message.
func quoteShort(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", s[:64], len(s))
	}
	return fmt.Sprintf("%q", s)
}
