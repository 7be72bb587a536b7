package inventory

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ztota/ztota/internal/vulnref"
)

func TestDpkgStatusFile(t *testing.T) {
	inv, err := inventoryOf(readFile(t, "testdata/dpkg/status"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Kind != KindDpkgStatus {
		t.Errorf("Kind = %q", inv.Kind)
	}
	if want := wantDpkgComponents("dpkg:."); !reflect.DeepEqual(inv.Components, want) {
		t.Errorf("components:\n got %+v\nwant %+v", inv.Components, want)
	}
	if len(inv.Notes) != 0 {
		t.Errorf("notes: %q", inv.Notes)
	}
}

func TestDpkgMalformedStanzas(t *testing.T) {
	status := strings.Join([]string{
		"Package: good\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: arm64\n",
		"Package: noversion\nStatus: install ok installed\n",
		"Package: badstatus\nStatus: install ok\nVersion: 1\n",
		"Package: weird\nStatus: install ok installed\nthis line has no colon\nVersion: 1\n",
		" continuation first\nPackage: cont\nVersion: 1\nStatus: install ok installed\n",
		"Package: BadName\nVersion: 1\nStatus: install ok installed\n",
		"Package: badver\nVersion: 1 2\nStatus: install ok installed\n",
		"Package: twice\nPackage: twice2\nVersion: 1\nStatus: install ok installed\n",
		"Package: badsource\nSource: foo (1.0\nVersion: 1\nStatus: install ok installed\n",
		"Package: unknownstate\nVersion: 1\nStatus: install ok exploded\n",
		"Package: nostatus\nVersion: 1\n",
		"Package: crlf\r\nStatus: hold ok unpacked\r\nVersion: 2:3.4~rc1-0+b1\r\nSource: crlf-src (2:3.4~rc1-0)\r\n",
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n",
	}, "\n")
	inv, err := inventoryOf([]byte(status), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []vulnref.Component{
		{Ecosystem: "Debian", Name: "crlf", Version: "2:3.4~rc1-0+b1", PURL: "pkg:deb/debian/crlf@2:3.4~rc1-0%2Bb1?upstream=crlf-src%402:3.4~rc1-0", Location: "dpkg:."},
		{Ecosystem: "Debian", Name: "good", Version: "1.0-1", PURL: "pkg:deb/debian/good@1.0-1?arch=arm64", Location: "dpkg:."},
	}
	if !reflect.DeepEqual(inv.Components, want) {
		t.Errorf("components:\n got %+v\nwant %+v", inv.Components, want)
	}
	if !hasNote(inv.Notes, "dpkg:.: 10 malformed stanzas skipped", `first: stanza 2: no Version field for "noversion"`) {
		t.Errorf("notes: %q", inv.Notes)
	}
}

// TestDpkgStatusD reads the one-file-per-package databases of minimal
// images, where a stanza may lack a Status field.
func TestDpkgStatusD(t *testing.T) {
	c := newCollector(DefaultLimits())
	if err := c.dpkgStatus([]byte("Package: libc6\nVersion: 2.36-9\nSource: glibc\n"), "dpkg:var/lib/dpkg/status.d/libc6", false); err != nil {
		t.Fatal(err)
	}
	if err := c.dpkgStatus([]byte("Package: libc6\nVersion: 2.36-9\n"), "dpkg:var/lib/dpkg/status", true); err != nil {
		t.Fatal(err)
	}
	inv := c.finish(KindTar)
	if len(inv.Components) != 1 || inv.Components[0].Location != "dpkg:var/lib/dpkg/status.d/libc6" {
		t.Errorf("components: %+v", inv.Components)
	}
	if !hasNote(inv.Notes, "dpkg:var/lib/dpkg/status: 1 malformed stanzas skipped", "no Status field") {
		t.Errorf("notes: %q", inv.Notes)
	}
}

func TestDpkgBounded(t *testing.T) {
	var b strings.Builder
	for range 20 {
		b.WriteString("Package: p\nVersion: 1\nStatus: install ok installed\n\n")
	}
	if _, err := inventoryOf([]byte(b.String()), Limits{MaxComponents: 10}); err == nil || !strings.Contains(err.Error(), "MaxComponents") {
		t.Errorf("err = %v, want MaxComponents", err)
	}
	if _, err := inventoryOf([]byte(b.String()), Limits{MaxEntryBytes: 100}); err == nil || !strings.Contains(err.Error(), "MaxEntryBytes") {
		t.Errorf("err = %v, want MaxEntryBytes", err)
	}
	inv, err := inventoryOf([]byte("Package: \n\n\n"), Limits{})
	if err != nil || len(inv.Components) != 0 || !hasNote(inv.Notes, "no Package field") {
		t.Errorf("empty package: %v %+v", err, inv)
	}
}
